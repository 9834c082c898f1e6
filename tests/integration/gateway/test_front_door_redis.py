"""The front door's Redis through the running gateway: one script call per proxied request
(token logout, ended logins, slow lane, limits), and a pool that never makes a request
wait: exhausted, it answers 429 ``overloaded``, never a 5xx."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from redis.asyncio import Redis

from devstack.stack import EmbeddedStack
from services.gateway.app import create_app
from services.gateway.identity.sessions import Sessions
from services.gateway.settings import GatewaySettings
from shared.auth import TokenMinter
from tests.integration.gateway.conftest import TEST_RATE_LIMITS, bearer
from tests.support.server import serve

pytestmark = pytest.mark.integration

BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) MicroMessenger/8.0.47"
BOOK = "/v1/appointments/appointments"
READ = "/v1/appointments/schedules"


def anything() -> FastAPI:
    """An upstream that answers every request with 200 (or 201 for a POST)."""
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def answer(request: Request, path: str) -> Response:
        return Response(b"{}", 201 if request.method == "POST" else 200)

    return app


@asynccontextmanager
async def front_door(
    gateway_settings: Callable[..., GatewaySettings], **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI, GatewaySettings]]:
    async with serve(anything()) as upstream:
        settings = gateway_settings({"appointments": upstream}, **overrides)
        app = create_app(settings)
        async with (
            serve(app) as url,
            httpx.AsyncClient(base_url=url, timeout=30, headers={"user-agent": BROWSER}) as gw,
        ):
            yield gw, app, settings


@asynccontextmanager
async def monitor(url: str, prefix: str) -> AsyncIterator[list[str]]:
    """The commands clients send (not those scripts run) naming a key under ``prefix``."""
    seen: list[str] = []
    client = Redis.from_url(url, decode_responses=True)
    started = asyncio.Event()

    async def run() -> None:
        async with client.monitor() as feed:
            started.set()
            async for command in feed.listen():
                if command.get("client_type") != "lua" and prefix in command["command"]:
                    seen.append(str(command["command"]))

    task = asyncio.create_task(run())
    await started.wait()
    marker = Redis.from_url(url, decode_responses=True)
    for _ in range(100):  # MONITOR is on once it shows a command of ours
        await marker.get(f"{prefix}monitor-marker")
        await asyncio.sleep(0.02)
        if seen:
            break
    assert seen, "MONITOR never started"
    seen.clear()
    try:
        yield seen
    finally:
        await asyncio.sleep(0.2)  # the feed runs behind
        task.cancel()
        await marker.aclose()
        await client.aclose()


def in_a_release_window() -> dict[str, Any]:
    now = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai"))
    return {
        "release_windows": [now.strftime("%H:%M")],
        "release_window_minutes": 720,
        "slow_lane": {"capacity": 2, "window_seconds": 60},
        "bot_account_burst": {"capacity": 2, "window_seconds": 60},
    }


async def test_one_redis_call_per_proxied_request(
    gateway_settings: Callable[..., GatewaySettings],
    minter: TokenMinter,
    stack: EmbeddedStack,
) -> None:
    async with front_door(gateway_settings, rate_limits=in_a_release_window()) as (gw, _, s):
        person = bearer(minter.mint("pa-once-1", ["patient"]))
        bot = {**bearer(minter.mint("pa-once-2", ["patient"])), "user-agent": "curl/8.5"}
        warm = await gw.get(READ, headers=person)  # loads the script once
        assert warm.status_code == 200, warm.text
        async with monitor(stack.redis_url(), s.redis_key_prefix) as seen:
            calls = [("GET", READ, person)] * 2 + [("POST", BOOK, person)] * 5
            calls += [("POST", BOOK, bot)] * 3 + [("GET", READ, bot)]
            answers = [await gw.request(m, path, headers=h, json={}) for m, path, h in calls]
        codes = [a.status_code for a in answers]
        # the person's third booking is faster than the burst probe allows: flagged, the
        # slow lane's two, then a refusal; the scripted client is flagged at once
        assert codes == [200, 200, 201, 201, 201, 201, 429, 201, 201, 429, 200], codes
        assert [a.json()["code"] for a in answers if a.status_code == 429] == ["slow_lane"] * 2
    assert len(seen) == len(calls), seen
    assert all(command.startswith("EVALSHA") for command in seen), seen


async def test_a_logged_out_or_ended_token_is_refused_by_the_front_doors_script(
    gateway_settings: Callable[..., GatewaySettings], minter: TokenMinter
) -> None:
    async with front_door(gateway_settings) as (gw, app, _):
        sessions: Sessions = app.state.logins.sessions
        issued = int(time.time()) - 5
        first = minter.mint("pa-ended-1", ["patient"], issued_at=issued)
        second = minter.mint("pa-ended-1", ["patient"], issued_at=issued)
        assert (await gw.get(READ, headers=bearer(first))).status_code == 200
        await sessions.revoke_access(sessions_principal(app, first))
        out = await gw.get(READ, headers=bearer(first))
        assert (out.status_code, out.json()["code"]) == (401, "token_invalid")
        assert (await gw.get(READ, headers=bearer(second))).status_code == 200
        await sessions.end_all("pa-ended-1")
        ended = await gw.get(READ, headers=bearer(second))
        assert (ended.status_code, ended.json()["code"]) == (401, "token_revoked")
        later = minter.mint("pa-ended-1", ["patient"], issued_at=int(time.time()) + 1)
        assert (await gw.get(READ, headers=bearer(later))).status_code == 200


def sessions_principal(app: FastAPI, token: str) -> Any:
    return app.state.front_verifier.verify(token)


def assert_overloaded(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "overloaded"
    assert response.headers["retry-after"] == "1"


async def test_an_exhausted_pool_answers_a_fast_429_and_never_a_5xx(
    gateway_settings: Callable[..., GatewaySettings], minter: TokenMinter
) -> None:
    pool = {"front_door_redis_max_connections": 2, "front_door_redis_wait_seconds": 0.05}
    async with front_door(gateway_settings, rate_limits=TEST_RATE_LIMITS, **pool) as (gw, app, _):
        me = bearer(minter.mint("pa-pool-1", ["patient"]))
        connections = app.state.traffic.redis.connection_pool
        held = [await connections.get_connection() for _ in range(2)]
        try:
            started = time.perf_counter()
            for method, path in [("GET", READ), ("POST", BOOK)]:
                assert_overloaded(await gw.request(method, path, headers=me, json={}))
            assert time.perf_counter() - started < 2.0
        finally:
            for connection in held:
                await connections.release(connection)
        assert (await gw.get(READ, headers=me)).status_code == 200

        tokens = [bearer(minter.mint(f"pa-pool-{n}", ["patient"])) for n in range(50)]
        surge = [gw.get(READ, headers=tokens[n % 50]) for n in range(400)]
        answers = await asyncio.gather(*surge)
    statuses = {a.status_code for a in answers}
    assert statuses <= {200, 429}, [a.text for a in answers if a.status_code not in (200, 429)]
    assert 200 in statuses
    for answer in answers:
        if answer.status_code == 429:
            assert answer.json()["code"] in {"overloaded", "rate_limited"}
            assert int(answer.headers["retry-after"]) >= 1
