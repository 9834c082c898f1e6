"""Routing at the gateway: pass-through, request ids, streaming, fast 503s for a dead service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from devstack.processes import free_port
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.auth import TokenMinter
from tests.integration.gateway.conftest import bearer
from tests.support.server import serve

pytestmark = pytest.mark.integration


def upstream_app(calls: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI()

    @app.api_route("/v1/echo/{path:path}", methods=["GET", "POST", "PUT", "DELETE"])
    async def echo(request: Request, path: str) -> dict[str, Any]:
        body = await request.body()
        seen = {
            "method": request.method,
            "path": path,
            "query": str(request.url.query),
            "body": body.decode(),
            "request_id": request.headers.get("x-request-id"),
            "authorization": request.headers.get("authorization"),
            "forwarded_for": request.headers.get("x-forwarded-for"),
        }
        calls.append(seen)
        if path == "slow":
            await asyncio.sleep(3)
        return seen

    @app.get("/v1/echo-stream/ticks")
    async def ticks() -> StreamingResponse:
        async def events() -> AsyncIterator[bytes]:
            yield b"id: 0\ndata: tick 0\n\n"
            # the rest only once the client has the first: a gateway that buffered the
            # stream would never deliver it (and the client would wait in vain)
            for _ in range(500):
                if {"released": True} in calls:
                    break
                await asyncio.sleep(0.01)
            else:
                yield b"data: not released\n\n"  # the first event never reached the client
                return
            for n in (1, 2):
                yield f"id: {n}\ndata: tick {n}\n\n".encode()

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


@pytest.fixture
async def routed(
    gateway_settings: Callable[..., GatewaySettings], minter: TokenMinter
) -> AsyncIterator[tuple[httpx.AsyncClient, list[dict[str, Any]], dict[str, str]]]:
    calls: list[dict[str, Any]] = []
    async with serve(upstream_app(calls)) as upstream:
        urls = {
            "echo": upstream,
            "echo-stream": upstream,
            "down": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        }
        settings = gateway_settings(urls, upstream_timeout_seconds=1.0)
        async with (
            serve(create_app(settings)) as url,
            httpx.AsyncClient(base_url=url, timeout=10) as client,
        ):
            yield client, calls, bearer(minter.mint("agent-1", ["agent"]))


async def test_requests_pass_through_with_the_gateways_request_id(routed: Any) -> None:
    client, calls, token = routed
    response = await client.post(
        "/v1/echo/things/7?x=1",
        content=b'{"a": 1}',
        headers={**token, "x-request-id": "trace-1", "content-type": "application/json"},
    )
    assert response.status_code == 200
    seen = calls[-1]
    assert (seen["method"], seen["path"], seen["query"]) == ("POST", "things/7", "x=1")
    assert seen["body"] == '{"a": 1}'
    # the gateway names the request itself and passes its own id on, never the client's
    assert seen["request_id"] == response.headers["x-request-id"] != "trace-1"
    assert seen["authorization"] == token["authorization"]  # services verify it again
    assert seen["forwarded_for"] == "127.0.0.1"


async def test_escaped_characters_reach_the_service_as_sent(routed: Any) -> None:
    client, calls, token = routed
    response = await client.get("/v1/echo/ids/a%07%20b%C3%A9/x?q=%C3%A9%00&r=1", headers=token)
    assert response.status_code == 200, response.text  # was a 500: the path was decoded first
    assert calls[-1]["path"] == "ids/a\x07 bé/x"
    assert calls[-1]["query"] == "q=%C3%A9%00&r=1"


async def test_a_dead_service_gets_a_fast_503(routed: Any) -> None:
    client, _, token = routed
    started = time.monotonic()
    response = await client.get("/v1/down/anything", headers=token)
    assert time.monotonic() - started < 2
    assert (response.status_code, response.json()["code"]) == (503, "service_unavailable")
    assert response.headers["retry-after"] == "2"
    unknown = await client.get("/v1/nowhere/x", headers=token)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_service")


async def test_a_slow_service_times_out_as_a_503(routed: Any) -> None:
    client, calls, token = routed
    response = await client.post("/v1/echo/slow", headers=token)
    assert (response.status_code, response.json()["code"]) == (503, "upstream_timeout")
    assert len([c for c in calls if c["path"] == "slow"]) == 1  # a POST is never retried


async def test_server_sent_events_stream_through(routed: Any) -> None:
    client, calls, token = routed
    async with client.stream("GET", "/v1/echo-stream/ticks", headers=token) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = []
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                lines.append(line)
                if len(lines) == 1:
                    released = {"released": True}
                    assert released not in calls  # the upstream still holds the rest
                    calls.append(released)
    assert lines == ["data: tick 0", "data: tick 1", "data: tick 2"]
