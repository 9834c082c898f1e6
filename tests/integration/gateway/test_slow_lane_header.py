"""The slow lane reaches the service: a booking let through in it is marked for the queue.

In a release window a flagged booker (here: a scripted User-Agent) that is still within
its slow-lane budget is forwarded with ``X-CareLoop-Lane: slow``, so the appointments
waiting room queues it behind people. The header is the gateway's word only: a client
that sends it itself has it removed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI, Request

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.auth import TokenMinter
from tests.support.server import serve

pytestmark = pytest.mark.integration

BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0"


def echo_upstream() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/appointments/appointments")
    async def book(request: Request) -> dict[str, Any]:
        return {"lane": request.headers.getlist("x-careloop-lane")}

    return app


def window_now() -> dict[str, Any]:
    now = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai"))
    return {
        "release_windows": [now.strftime("%H:%M")],
        "release_window_minutes": 720,
        "slow_lane": {"capacity": 5, "window_seconds": 60},
    }


async def test_the_slow_lane_is_passed_on_and_never_taken_from_the_client(
    gateway_settings: Callable[..., GatewaySettings], minter: TokenMinter
) -> None:
    async with serve(echo_upstream()) as upstream:
        settings = gateway_settings({"appointments": upstream}, rate_limits=window_now())
        async with (
            serve(create_app(settings)) as base,
            httpx.AsyncClient(base_url=base, timeout=30) as client,
        ):

            async def book(account: str, agent: str, **headers: str) -> list[str]:
                token = minter.mint(account, ["patient"])
                answer = await client.post(
                    "/v1/appointments/appointments",
                    json={"patient_id": "p", "schedule_id": "s"},
                    headers={"authorization": f"Bearer {token}", "user-agent": agent, **headers},
                )
                assert answer.status_code == 200, answer.text
                return list(answer.json()["lane"])

            assert await book("acct-person", BROWSER) == []
            assert await book("acct-spoof", BROWSER, **{"X-CareLoop-Lane": "slow"}) == []
            assert await book("acct-script", "python-requests/2.32") == ["slow"]
            assert await book("acct-script", "python-requests/2.32") == ["slow"]
