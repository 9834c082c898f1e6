"""The proxy at its edges: headers in any bytes, one Date, upstreams that break off, and
event streams that stay open longer than every timeout on their way."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from services.notifications.settings import NotificationsSettings
from shared.auth import TokenMinter
from shared.settings import ServiceSettings
from tests.integration.gateway.conftest import bearer
from tests.integration.notifications.conftest import running_notifications
from tests.support.server import serve

pytestmark = pytest.mark.integration

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def header_echo() -> FastAPI:
    app = FastAPI()

    @app.get("/v1/echo/headers")
    async def headers(request: Request) -> Response:
        seen = [[n.decode("latin-1"), v.hex()] for n, v in request.headers.raw]
        reply = JSONResponse(seen)
        reply.raw_headers.append((b"x-reason-back", "患者来电".encode()))
        return reply

    return app


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    """An upstream speaking raw bytes over TCP, to break HTTP where a framework would not."""

    async def serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(serve_one, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


async def hang_up(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads the request and closes the connection without a word."""


async def half_answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n")
    writer.write(b'\r\n{"items": [')
    await writer.drain()


async def broken_stream(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n")
    writer.write(b"transfer-encoding: chunked\r\n\r\n")
    event = b"id: 1\ndata: one\n\n"
    writer.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.write(b"ff\r\npartial")  # a chunk that never completes: the connection drops
    await writer.drain()


@asynccontextmanager
async def gateway_for(
    gateway_settings: Callable[..., GatewaySettings], urls: dict[str, str], **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    settings = gateway_settings(urls, **overrides)
    async with (
        serve(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        yield client


def asgi_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_request_headers_in_any_bytes_reach_the_service_unchanged(
    gateway_settings: Callable[..., GatewaySettings], minter: TokenMinter
) -> None:
    sent = [
        (b"x-access-reason", "患者来电".encode()),
        (b"x-access-reason-encoded", b"%E6%82%A3%E8%80%85%E6%9D%A5%E7%94%B5"),
        (b"idempotency-key", "预约-键-0001-abcd".encode()),
        (b"x-foo", "é".encode("latin-1")),
        (b"x-not-utf8", b"\xff\xfe\xfd"),
        (b"x-twice", b"one"),
        (b"x-twice", b"two"),
    ]
    token = bearer(minter.mint("agent-1", ["agent"]))
    async with (
        serve(header_echo()) as upstream,
        gateway_for(gateway_settings, {"echo": upstream}) as client,
    ):
        headers = [(k.encode(), v.encode()) for k, v in token.items()] + sent
        response = await client.get("/v1/echo/headers", headers=headers)
        assert response.status_code == 200, response.text  # each of these was a 500
        seen = [(n.encode("latin-1"), bytes.fromhex(v)) for n, v in response.json()]
        assert [h for h in seen if h[0] in {n for n, _ in sent}] == sent
        assert response.headers.raw.count((b"x-reason-back", "患者来电".encode())) == 1
        wrong = await client.get(
            "/v1/echo/headers", headers=[(b"authorization", "Bearer 令牌".encode())]
        )
        assert (wrong.status_code, wrong.json()["code"]) == (401, "token_invalid")


async def test_a_proxied_answer_carries_one_date_and_no_upstream_server(
    gateway_settings: Callable[..., GatewaySettings], minter: TokenMinter
) -> None:
    token = bearer(minter.mint("agent-1", ["agent"]))
    async with (
        serve(header_echo()) as upstream,
        gateway_for(gateway_settings, {"echo": upstream}) as client,
    ):
        response = await client.get("/v1/echo/headers", headers=token)
        assert response.status_code == 200
        assert len(response.headers.get_list("date")) == 1
        assert len(response.headers.get_list("server")) <= 1  # the gateway's own, if any
        assert len(response.headers.get_list("x-request-id")) == 1


async def test_an_upstream_that_hangs_up_gets_a_502_problem(
    gateway_settings: Callable[..., GatewaySettings],
    minter: TokenMinter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = bearer(minter.mint("agent-1", ["agent"]))
    async with (
        raw_server(hang_up) as silent,
        raw_server(half_answer) as half,
        gateway_for(gateway_settings, {"silent": silent, "half": half}) as client,
    ):
        for method in ("GET", "POST"):
            response = await client.request(method, "/v1/silent/things", headers=token)
            assert (response.status_code, response.json()["code"]) == (502, "upstream_failed")
            assert response.headers["content-type"].startswith("application/problem+json")
        broken = await client.get("/v1/half/things", headers=token)
        assert (broken.status_code, broken.json()["code"]) == (502, "upstream_failed")
    assert asgi_errors(caplog) == []


async def test_a_stream_whose_upstream_breaks_ends_cleanly(
    gateway_settings: Callable[..., GatewaySettings],
    minter: TokenMinter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = bearer(minter.mint("agent-1", ["agent"]))
    async with (
        raw_server(broken_stream) as upstream,
        gateway_for(gateway_settings, {"live": upstream}) as client,
        client.stream("GET", "/v1/live/stream", headers=token) as response,
    ):
        assert response.status_code == 200
        lines = [line async for line in response.aiter_lines()]  # ends: no read error
    assert "data: one" in lines
    assert asgi_errors(caplog) == []


@pytest.fixture
async def live_inbox(
    gateway_settings: Callable[..., GatewaySettings],
    make_settings: Callable[..., ServiceSettings],
    minter: TokenMinter,
) -> AsyncIterator[httpx.AsyncClient]:
    """Notifications with a 0.8 s heartbeat behind a gateway that waits 0.5 s for an
    answer but lets an event stream be silent for 2 s."""
    settings = make_settings(
        "notifications", NotificationsSettings, inbox_stream_heartbeat_seconds=0.8
    )
    assert isinstance(settings, NotificationsSettings)
    async with running_notifications(settings, minter) as notifications:
        base = str(notifications.client.base_url).rstrip("/")
        async with gateway_for(
            gateway_settings,
            {"notifications": base},
            upstream_timeout_seconds=0.5,
            stream_idle_timeout_seconds=2.0,
        ) as client:
            yield client


async def test_the_inbox_stream_stays_open_longer_than_every_timeout(
    live_inbox: httpx.AsyncClient, minter: TokenMinter, caplog: pytest.LogCaptureFixture
) -> None:
    token = bearer(minter.mint("pa-stream-1", ["patient"]))
    beats: list[float] = []
    started = time.monotonic()

    async def listen() -> None:
        async with live_inbox.stream(
            "GET", "/v1/notifications/inbox/stream", headers=token
        ) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith(": heartbeat"):
                    beats.append(time.monotonic() - started)

    task = asyncio.create_task(listen())
    await asyncio.sleep(3.2)
    assert not task.done(), task.exception() if task.done() else None  # still open
    task.cancel()
    assert len(beats) >= 3, beats  # heartbeats flowed throughout
    assert beats[-1] > 2.2
    await asyncio.sleep(1.0)  # the client went away: the gateway lets go of the stream quietly
    assert asgi_errors(caplog) == []
