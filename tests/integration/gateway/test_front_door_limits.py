"""Rate limits through the running gateway: 429 problems with Retry-After, per phone, per
account, per address, and the slow lane for scripted booking clients in a release window."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.integration.gateway.conftest import TEST_RATE_LIMITS, Gateway, bearer

pytestmark = pytest.mark.integration


def budget(capacity: int, window_seconds: float = 600) -> dict[str, Any]:
    return {"capacity": capacity, "window_seconds": window_seconds}


def limits(**values: Any) -> dict[str, Any]:
    return {"rate_limits": {**TEST_RATE_LIMITS, **values}}


def assert_throttled(response: httpx.Response, code: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    assert int(response.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    "gateway", [limits(login_code={"per_key": {"phone": budget(2, 900)}})], indirect=True
)
async def test_login_codes_are_limited_per_phone(gateway: Gateway) -> None:
    assert (await gateway.ask_code("13800138101")).status_code == 202
    assert (await gateway.ask_code("13800138101")).status_code == 202
    assert_throttled(await gateway.ask_code("13800138101"), "rate_limited")
    assert (await gateway.ask_code("13800138102")).status_code == 202  # another phone


@pytest.mark.parametrize("gateway", [limits(read={"per_account": budget(3, 60)})], indirect=True)
async def test_proxied_reads_are_limited_per_account(gateway: Gateway) -> None:
    first = await gateway.patient_login("13800138103")
    second = await gateway.patient_login("13800138104")
    inbox = "/v1/notifications/inbox"
    for _ in range(3):
        response = await gateway.client.get(inbox, headers=bearer(first["access_token"]))
        assert response.status_code == 200, response.text
    assert_throttled(
        await gateway.client.get(inbox, headers=bearer(first["access_token"])), "rate_limited"
    )
    other = await gateway.client.get(inbox, headers=bearer(second["access_token"]))
    assert other.status_code == 200, other.text


@pytest.mark.parametrize(
    "gateway",
    [{"rate_limits": {"login": {"per_ip": budget(2)}, "release_windows": []}}],
    indirect=True,
)
async def test_the_gateways_own_routes_are_limited_per_address(gateway: Gateway) -> None:
    for _ in range(2):
        response = await gateway.staff_login("nobody", "wrong-password-123")
        assert response.status_code == 401, response.text
    assert_throttled(await gateway.staff_login("nobody", "wrong-password-123"), "rate_limited")


def _window_now() -> dict[str, Any]:
    """A release window open from now on, for longer than any test run lasts.

    The parameter is built when the tests are collected, minutes before this test runs in
    a full suite: a short window would already be over (the longest one allowed is 12 h).
    """
    now = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai"))
    return {
        "rate_limits": {
            "release_windows": [now.strftime("%H:%M")],
            "release_window_minutes": 720,
            "slow_lane": budget(2, 60),
        }
    }


@pytest.mark.parametrize("gateway", [_window_now()], indirect=True)
async def test_a_scripted_booking_client_gets_the_slow_lane_in_a_release_window(
    gateway: Gateway,
) -> None:
    patient = await gateway.patient_login("13800138105")
    headers = {**bearer(patient["access_token"]), "user-agent": "python-requests/2.32"}
    book = {"schedule_id": "s-1", "patient_id": "p-1"}
    for _ in range(2):  # let through to routing (no appointments service here)
        response = await gateway.client.post(
            "/v1/appointments/appointments", json=book, headers=headers
        )
        assert response.status_code != 429, response.text
    assert_throttled(
        await gateway.client.post("/v1/appointments/appointments", json=book, headers=headers),
        "slow_lane",
    )
    # reads are not booking: the lane does not touch them
    read = await gateway.client.get("/v1/notifications/inbox", headers=headers)
    assert read.status_code == 200, read.text
