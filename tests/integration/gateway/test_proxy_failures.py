"""Every way an upstream's transport can fail is a 502 or 503 problem, never a 500.

A real TCP upstream (``asyncio.start_server`` on 127.0.0.1) misbehaves on purpose: it
closes the connection after the request head, in the middle of the status line, of the
headers or of the body, resets it (``SO_LINGER`` 0), resets it while the request body is
still coming, or never answers. Each answer through the real gateway is an RFC 9457
problem with ``Retry-After``; a POST or PATCH reaches the upstream at most once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import struct
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from devstack.processes import free_port
from services.gateway.settings import GatewaySettings
from shared.auth import TokenMinter
from tests.integration.gateway.conftest import bearer
from tests.integration.gateway.test_proxy_edges import gateway_for

pytestmark = pytest.mark.integration

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def close_after_head(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads the request head, says nothing, closes."""


async def half_status_line(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 20")
    await writer.drain()


async def mid_headers(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-len")
    await writer.drain()


async def mid_body(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n")
    writer.write(b'\r\n{"items": [1, 2,')
    await writer.drain()


async def not_http(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    await writer.drain()


async def rst_at_once(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    reset(writer)


async def rst_mid_body(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n")
    writer.write(b'\r\n{"items": [')
    await writer.drain()
    await asyncio.sleep(0.05)
    reset(writer)


async def mid_event_stream_head(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-str")
    await writer.drain()


async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # until the gateway gives up and closes


HANDLERS: dict[str, Handler] = {
    "after_head": close_after_head,
    "status_line": half_status_line,
    "headers": mid_headers,
    "body": mid_body,
    "not_http": not_http,
    "rst": rst_at_once,
    "rst_body": rst_mid_body,
    "stream_head": mid_event_stream_head,
    "silent": never_answers,
}


class Upstream:
    """A misbehaving upstream; ``heads`` counts the request heads it read, per method."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.heads: list[str] = []

    async def serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head.split(b" ", 1)[0].decode())
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def upstreams() -> AsyncIterator[tuple[dict[str, str], dict[str, Upstream]]]:
    servers, urls, seen = [], {}, {}
    for name, handler in HANDLERS.items():
        upstream = Upstream(handler)
        server = await asyncio.start_server(upstream.serve_one, "127.0.0.1", 0)
        servers.append(server)
        urls[name.replace("_", "-")] = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        seen[name.replace("_", "-")] = upstream
    urls["refused"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    try:
        yield urls, seen
    finally:
        for server in servers:
            server.close()


def assert_problem(response: httpx.Response, statuses: set[int]) -> None:
    assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["code"] in {"upstream_failed", "service_unavailable", "upstream_timeout"}


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE"])
async def test_every_upstream_transport_failure_is_a_502_or_503_problem(
    gateway_settings: Callable[..., GatewaySettings],
    minter: TokenMinter,
    caplog: pytest.LogCaptureFixture,
    method: str,
) -> None:
    token = bearer(minter.mint("agent-1", ["agent"]))
    async with (
        upstreams() as (urls, seen),
        gateway_for(gateway_settings, urls, upstream_timeout_seconds=0.5) as client,
    ):
        answers: dict[str, int] = {}
        for service in urls:
            body = b'{"note": "x"}' if method in {"POST", "PATCH"} else None
            response = await client.request(
                method, f"/v1/{service}/things", headers=token, content=body
            )
            expected = {503} if service in {"refused", "silent"} else {502, 503}
            assert_problem(response, expected)
            answers[service] = response.status_code
        silent = await client.request(method, "/v1/silent/things", headers=token)
        assert silent.json()["code"] == "upstream_timeout"
        streamed = await client.get(
            "/v1/stream-head/events", headers={**token, "accept": "text/event-stream"}
        )
        assert_problem(streamed, {502})
    assert answers["refused"] == 503
    if method in {"POST", "PATCH"}:  # never retried: each upstream saw it at most once
        assert all(u.heads.count(method) <= 1 for name, u in seen.items() if name != "silent")
        assert seen["silent"].heads.count(method) == 2  # asked twice above, once each
    else:  # the idempotent ones may be retried when nothing came back
        assert seen["after-head"].heads.count(method) >= 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


async def test_a_request_body_cut_off_by_a_reset_is_a_502_and_not_retried(
    gateway_settings: Callable[..., GatewaySettings], minter: TokenMinter
) -> None:
    """The upstream resets the connection after the head while the body is still coming."""
    token = bearer(minter.mint("agent-1", ["agent"]))
    upstream = Upstream(rst_at_once)
    server = await asyncio.start_server(upstream.serve_one, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    body = b"x" * 900_000  # more than the socket buffers take before the reset lands
    try:
        async with gateway_for(gateway_settings, {"upload": url}) as client:
            for method in ("POST", "PATCH"):
                response = await client.request(
                    method, "/v1/upload/files", headers=token, content=body
                )
                assert_problem(response, {502, 503})
    finally:
        server.close()
    assert upstream.heads.count("POST") <= 1
    assert upstream.heads.count("PATCH") <= 1


SLOW_UPSTREAM = """
import asyncio, sys
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

app = FastAPI()

@app.api_route("/v1/slow/{path:path}", methods=["GET", "POST"])
async def slow(request: Request, path: str) -> StreamingResponse:
    await request.body()
    await asyncio.sleep(0.2 if path == "fast" else 1.0)

    async def body():
        yield b'{"items": ['
        for n in range(200):
            await asyncio.sleep(0.01)
            yield b"%d," % n
        yield b"0]}"

    return StreamingResponse(body(), media_type="application/json")

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


async def test_an_upstream_killed_mid_request_gets_502_or_503_not_500(
    gateway_settings: Callable[..., GatewaySettings], minter: TokenMinter
) -> None:
    """The issue's case: the service is SIGKILLed while requests are in flight."""
    token = bearer(minter.mint("agent-1", ["agent"]))
    port = free_port()
    upstream = await asyncio.create_subprocess_exec(sys.executable, "-c", SLOW_UPSTREAM, str(port))
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as probe:
            for _ in range(200):
                try:
                    await probe.get(f"{url}/openapi.json")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        async with gateway_for(gateway_settings, {"slow": url}) as client:
            for _ in range(3):  # keep-alive connections in the gateway's pool
                assert (await client.get("/v1/slow/fast", headers=token)).status_code == 200

            async def one(method: str, n: int) -> httpx.Response:
                await asyncio.sleep(0.01 * n)
                return await client.request(
                    method, f"/v1/slow/x{n}", headers=token, content=b"{}" * 100
                )

            calls = [asyncio.create_task(one(m, n)) for n in range(30) for m in ("GET", "POST")]
            await asyncio.sleep(1.5)  # some answers are half sent, some not begun
            upstream.send_signal(signal.SIGKILL)
            answers = await asyncio.gather(*calls)
    finally:
        if upstream.returncode is None:
            upstream.kill()
        await upstream.wait()
    statuses = {a.status_code for a in answers}
    # 429 overloaded: the gateway shedding load on a busy machine is a designed answer too
    assert statuses <= {200, 429, 502, 503}, [a.text for a in answers if a.status_code >= 500]
    for answer in answers:
        if answer.status_code == 429:
            assert answer.json()["code"] == "overloaded"
            assert int(answer.headers["retry-after"]) >= 1
        elif answer.status_code != 200:
            assert_problem(answer, {502, 503})
