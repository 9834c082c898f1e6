"""The HL7 v2 intake's transport: an asyncio MLLP server (VT … FS CR framing).

One ACK per message, in order, several messages per connection; a frame may arrive over
several reads. A frame larger than ``max_frame`` closes that connection; bytes outside a
frame are dropped; a handler that fails is answered with an AE built from what can be read
of the message. Nothing a peer sends stops the server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from services.followup.domain.hl7_ack import ack

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
DEFAULT_MAX_FRAME = 1024 * 1024  # 1 MiB
_READ_SIZE = 64 * 1024

log = structlog.get_logger("careloop.followup.mllp")

Handler = Callable[[str], Awaitable[str]]


def frame(message: str) -> bytes:
    """``message`` wrapped for MLLP (UTF-8)."""
    return START_BLOCK + message.encode("utf-8") + END_BLOCK


def _decode(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.decode("latin-1")  # never fails: the parser then judges the content


async def _answer(handle: Handler, message: str) -> str:
    try:
        return await handle(message)
    except Exception:
        log.exception("mllp_handler_failed")
        return ack(message, "AE", "internal error while processing the message")


async def _serve_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    handle: Handler,
    max_frame: int,
) -> None:
    peer = writer.get_extra_info("peername")
    buffer = bytearray()
    try:
        while True:
            chunk = await reader.read(_READ_SIZE)
            if not chunk:
                return
            buffer += chunk
            while True:
                start = buffer.find(START_BLOCK)
                if start < 0:
                    if buffer:
                        log.warning("mllp_bytes_outside_frame", peer=peer, dropped=len(buffer))
                    buffer.clear()
                    break
                if start > 0:
                    log.warning("mllp_bytes_outside_frame", peer=peer, dropped=start)
                    del buffer[:start]
                end = buffer.find(END_BLOCK, 1)
                if end < 0:
                    if len(buffer) - 1 > max_frame:
                        log.warning("mllp_frame_too_large", peer=peer, limit=max_frame)
                        return
                    break
                payload = bytes(buffer[1:end])
                del buffer[: end + len(END_BLOCK)]
                if len(payload) > max_frame:
                    log.warning("mllp_frame_too_large", peer=peer, limit=max_frame)
                    return
                writer.write(frame(await _answer(handle, _decode(payload))))
                await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        log.info("mllp_connection_lost", peer=peer, error=str(exc))
    except Exception:
        log.exception("mllp_connection_failed", peer=peer)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def serve_mllp(
    host: str,
    port: int,
    handle: Handler,
    *,
    max_frame: int = DEFAULT_MAX_FRAME,
) -> asyncio.Server:
    """Start an MLLP server on ``host:port``; ``handle`` turns one message into its ACK.

    The caller owns the server: ``server.close()`` and ``await server.wait_closed()``."""

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve_connection(reader, writer, handle, max_frame)

    return await asyncio.start_server(on_connect, host, port)
