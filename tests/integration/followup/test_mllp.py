"""The MLLP intake server over real TCP: framing, one ACK per message, bad frames survived."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import hl7  # type: ignore[import-untyped]
import pytest

from devstack.processes import free_port
from services.followup.domain.hl7_ack import ack
from services.followup.domain.hl7_discharge import (
    Discharge,
    Malformed,
    NonDischarge,
    parse_discharge,
)
from services.followup.mllp import END_BLOCK, START_BLOCK, frame, serve_mllp

pytestmark = pytest.mark.integration

PID = "PID|1||123^^^BJH^MR||Wang^Li||19800102|F"
PV1 = "PV1|1|I|CARD^301^2" + "|" * 16 + "V1" + "|" * 26 + "20260310100000"


def adt(trigger: str, control_id: str) -> str:
    msh = f"MSH|^~\\&|HIS|BJH|CARELOOP|CL|20260310101500||ADT^{trigger}|{control_id}|P|2.5"
    return "\r".join([msh, f"EVN|{trigger}|20260310101400", PID, PV1]) + "\r"


async def handle(raw: str) -> str:
    parsed = parse_discharge(raw)
    if isinstance(parsed, Malformed):
        return ack(parsed, "AR", parsed.reason)
    if "BOOM" in raw:
        raise RuntimeError("handler failure")
    assert isinstance(parsed, Discharge | NonDischarge)
    return ack(parsed, "AA")


@pytest.fixture
async def port() -> AsyncIterator[int]:
    number = free_port()
    server = await serve_mllp("127.0.0.1", number, handle, max_frame=4096)
    yield number
    server.close()
    await server.wait_closed()


async def read_ack(reader: asyncio.StreamReader) -> tuple[str, str]:
    """(MSA-1, MSA-2) of the next framed ACK."""
    block = await asyncio.wait_for(reader.readuntil(END_BLOCK), 5)
    assert block.startswith(START_BLOCK)
    message = hl7.parse(block[1 : -len(END_BLOCK)].decode())
    msa = message.segment("MSA")
    return str(msa(1)), str(msa(2))


async def test_several_messages_per_connection_and_split_frames(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        # two messages in one write
        writer.write(frame(adt("A03", "C1")) + frame(adt("A01", "C2")))
        await writer.drain()
        assert await read_ack(reader) == ("AA", "C1")
        assert await read_ack(reader) == ("AA", "C2")  # acknowledged, not planned
        # one message over two writes (split inside the end block too)
        data = frame(adt("A03", "C3"))
        writer.write(data[:40])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(data[40:-1])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(data[-1:])
        await writer.drain()
        assert await read_ack(reader) == ("AA", "C3")
        # malformed: rejected, with what can be read of it
        writer.write(frame(adt("A03", "")))
        await writer.drain()
        assert await read_ack(reader) == ("AR", "UNKNOWN")
    finally:
        writer.close()
        await writer.wait_closed()


async def test_garbage_does_not_kill_the_server(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    # bytes outside any frame, then a garbage frame, then invalid UTF-8, then a good one
    writer.write(b"hello\r\n" + frame("not hl7 at all") + START_BLOCK + b"\xff\xfe" + END_BLOCK)
    writer.write(frame(adt("A03", "G1")))
    await writer.drain()
    assert await read_ack(reader) == ("AR", "UNKNOWN")
    assert await read_ack(reader) == ("AR", "UNKNOWN")
    assert await read_ack(reader) == ("AA", "G1")
    # a handler that fails: AE, and the connection goes on
    writer.write(frame(adt("A03", "BOOM")) + frame(adt("A03", "G2")))
    await writer.drain()
    assert await read_ack(reader) == ("AE", "BOOM")
    assert await read_ack(reader) == ("AA", "G2")
    writer.close()
    await writer.wait_closed()


async def test_a_frame_too_large_closes_only_that_connection(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(START_BLOCK + b"MSH|" + b"x" * 10_000)
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
    writer.close()
    # the server still answers a new connection
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(frame(adt("A03", "AFTER")))
    await writer.drain()
    assert await read_ack(reader) == ("AA", "AFTER")
    writer.close()
    await writer.wait_closed()


async def test_an_abrupt_disconnect_mid_frame_is_survived(port: int) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(frame(adt("A03", "HALF"))[:30])
    await writer.drain()
    writer.transport.abort()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(frame(adt("A03", "NEXT")))
    await writer.drain()
    assert await read_ack(reader) == ("AA", "NEXT")
    writer.close()
    await writer.wait_closed()
