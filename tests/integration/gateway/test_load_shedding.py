"""Past its bound of requests in progress, the gateway answers a fast 429 at once.

The upstream here takes a second per answer; the gateway carries two requests at a time.
Of twenty sent together two are answered by the service and eighteen get ``429
overloaded`` with ``Retry-After`` right away, while health checks still answer.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.auth import TokenMinter
from tests.support.server import serve

pytestmark = pytest.mark.integration


UPSTREAM_SECONDS = 3.0  # far beyond a shed answer, even on a busy machine


def slow_upstream() -> FastAPI:
    app = FastAPI()

    @app.get("/v1/appointments/schedules")
    async def schedules() -> dict[str, Any]:
        await asyncio.sleep(UPSTREAM_SECONDS)
        return {"items": []}

    return app


async def test_requests_beyond_the_bound_get_a_fast_429(
    gateway_settings: Callable[..., GatewaySettings], minter: TokenMinter
) -> None:
    async with serve(slow_upstream()) as upstream:
        settings = gateway_settings({"appointments": upstream}, max_in_flight_requests=2)
        async with (
            serve(create_app(settings)) as base,
            httpx.AsyncClient(base_url=base, timeout=30) as client,
        ):
            token = minter.mint("acct-shed", ["patient"])
            headers = {"authorization": f"Bearer {token}"}

            async def one() -> tuple[int, float, httpx.Response]:
                started = time.perf_counter()
                answer = await client.get("/v1/appointments/schedules", headers=headers)
                return answer.status_code, time.perf_counter() - started, answer

            answers = await asyncio.gather(*(one() for _ in range(20)))
            health = await client.get("/healthz")

    assert Counter(status for status, _, _ in answers) == {200: 2, 429: 18}
    shed = [(seconds, answer) for status, seconds, answer in answers if status == 429]
    assert max(seconds for seconds, _ in shed) < UPSTREAM_SECONDS / 2  # before any answer
    assert {a.json()["code"] for _, a in shed} == {"overloaded"}
    assert {a.headers["retry-after"] for _, a in shed} == {"1"}
    assert health.status_code == 200
