"""The default rate limits, walked by a person: a family's booking day through the gateway
(README: a patient's booking journey) never meets a 429."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from services.appointments.app import create_app as create_appointments
from services.appointments.settings import AppointmentsSettings
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from services.gateway.traffic import RateLimitSettings
from shared.auth import TokenMinter
from shared.settings import ServiceSettings
from tests.factories import make_national_id, make_phone
from tests.integration.appointments.conftest import ORG, Api, seed_master_data
from tests.integration.gateway.conftest import bearer
from tests.support.patient_codes import texted_code
from tests.support.server import serve

pytestmark = pytest.mark.integration

SHANGHAI = ZoneInfo("Asia/Shanghai")
A = "/v1/appointments"
BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0.40"


@pytest.fixture
async def front_door(
    make_settings: Callable[..., ServiceSettings],
    gateway_settings: Callable[..., GatewaySettings],
    minter: TokenMinter,
) -> AsyncIterator[tuple[httpx.AsyncClient, Api]]:
    """Appointments behind a gateway with the default rate limits (no test exemptions)."""
    settings = make_settings("appointments", AppointmentsSettings)
    async with (
        serve(create_appointments(settings)) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as direct,
    ):
        api = Api(base, direct, minter, settings)
        await seed_master_data(api)
        gateway = gateway_settings({"appointments": base}, rate_limits=RateLimitSettings())
        async with (
            serve(create_app(gateway)) as url,
            httpx.AsyncClient(base_url=url, timeout=30, headers={"user-agent": BROWSER}) as gw,
        ):
            yield gw, api


async def session_now(api: Api, slot_count: int = 10) -> str:
    """A session starting in a minute or two (check-in is open), all numbers public."""
    start = (datetime.now(SHANGHAI) + timedelta(minutes=2)).replace(second=0, microsecond=0)
    end = start + timedelta(minutes=60)
    if end.date() != start.date():
        start = datetime.combine(end.date(), time(0, 0), tzinfo=SHANGHAI)
        end = start + timedelta(minutes=60)
    body = [
        {
            "org_id": ORG,
            "resource_code": "D2",
            "clinic_date": start.date().isoformat(),
            "session": "night",
            "starts": start.time().isoformat(),
            "ends": end.time().isoformat(),
            "slot_count": slot_count,
        }
    ]
    published = await api.client.post(f"{A}/admin/schedules", json=body, headers=api.admin)
    assert published.status_code == 201, published.text
    sid = str(published.json()["schedules"][0]["schedule_id"])
    query = {"org_id": ORG, "resource_id": f"{ORG}.D2", "date_from": start.date().isoformat()}
    for _ in range(300):  # the overdue pool-return job makes every number public
        listed = await api.client.get(f"{A}/schedules", params=query, headers=api.admin)
        remaining = next(s["remaining"] for s in listed.json() if s["id"] == sid)
        if remaining.get("public") == slot_count:
            return sid
        await asyncio.sleep(0.1)
    raise AssertionError("the session's numbers never became public")


async def test_a_family_booking_day_never_meets_a_429(
    front_door: tuple[httpx.AsyncClient, Api], minter: TokenMinter
) -> None:
    gw, api = front_door
    sid = await session_now(api)
    me = bearer(minter.mint("pa-family-1", ["patient"], org_id=ORG))
    answers: list[httpx.Response] = []

    async def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await gw.request(method, path, headers={**me, **kwargs.pop("h", {})}, **kwargs)
        answers.append(response)
        assert response.status_code != 429, f"{method} {path}: {response.text}"
        return response

    assert (await call("GET", "/v1/auth/me")).status_code == 200
    family = []
    for name in ("张三", "李四", "王五"):
        asked = await call(
            "POST",
            f"{A}/patients",
            json={"name": name, "national_id": make_national_id(), "phone": make_phone()},
        )
        assert asked.status_code == 202, asked.text
        verification = asked.json()["verification_id"]
        code = await texted_code(api.settings, verification)
        added = await call(
            "POST", f"{A}/patients/verifications/{verification}", json={"code": code}
        )
        assert added.status_code == 201, added.text
        family.append(added.json()["id"])
    await call("GET", f"{A}/patients")
    await call("GET", f"{A}/schedules", params={"org_id": ORG})
    await call("GET", f"{A}/schedules/{sid}/slots")

    booked = []
    for n, patient_id in enumerate(family):
        body = {"patient_id": patient_id, "schedule_id": sid}
        key = {"idempotency-key": f"family-day-{n:04d}"}
        first = await call("POST", f"{A}/appointments", json=body, h=key)
        assert first.status_code == 201, first.text
        await asyncio.sleep(0.7)  # a person, not a script: well under the burst probe
        again = await call("POST", f"{A}/appointments", json=body, h=key)  # a double tap
        assert again.json()["id"] == first.json()["id"]
        booked.append(first.json()["id"])
        await asyncio.sleep(0.7)

    await call("GET", f"{A}/appointments")
    for appointment_id in booked[:2]:
        await call("GET", f"{A}/appointments/{appointment_id}")
        for _ in range(2):  # checking in, and tapping again to see the queue number
            checked = await call("POST", f"{A}/appointments/{appointment_id}/check-in")
            assert checked.status_code in (200, 201, 409), checked.text
    later = await api.publish(days_ahead=2)  # cancelling closes 2 h before a visit
    body = {"patient_id": family[0], "schedule_id": later}
    planned = await call(
        "POST", f"{A}/appointments", json=body, h={"idempotency-key": "family-later-0001"}
    )
    assert planned.status_code == 201, planned.text
    for appointment_id in (booked[2], planned.json()["id"]):
        reason = {"reason": "改天再来"}
        cancelled = await call("POST", f"{A}/appointments/{appointment_id}/cancel", json=reason)
        assert cancelled.status_code in (200, 201, 409), cancelled.text
    assert cancelled.status_code == 200, cancelled.text
    await call("GET", f"{A}/appointments")
    assert len(answers) >= 20
