"""The referral's side of the saga read from appointments' topic as appointments writes it:
a booked visit, then a no-show; a reply to an older ask changes nothing. (The whole saga
with appointments running is in test_saga.py and test_journey.py.)"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.appointments.events import AppointmentBooked, AppointmentNoShow
from shared.events import make_event
from shared.ids import new_id
from shared.principal import Role
from tests.integration.referrals.cases_support import (
    CASES,
    command,
    known_patient,
    referral_body,
    staff,
)
from tests.integration.referrals.conftest import Api, seed_directory
from tests.support.kafka import publish_events, wait_until

pytestmark = pytest.mark.integration


def visit(case: dict[str, Any], ask: str | None, appointment_id: str) -> dict[str, Any]:
    starts = datetime.now(UTC) + timedelta(days=2)
    return {
        "appointment_id": appointment_id,
        "patient_id": case["patient_id"],
        "account_id": "acct-1",
        "org_id": case["receiving_org_id"],
        "department_id": case["receiving_department_id"],
        "department_name": "心血管内科",
        "resource_id": "doc-1",
        "resource_name": "王医生",
        "resource_kind": "doctor",
        "clinic_date": date.today() + timedelta(days=2),
        "session": "morning",
        "number": 3,
        "starts_at": starts,
        "ends_at": starts + timedelta(minutes=20),
        "channel": "referral",
        "referral_id": case["referral_id"],
        "booking_request_id": ask,
        "pool": "referral",
    }


async def test_a_booked_visit_then_a_no_show_and_a_stale_reply(referrals: Api) -> None:
    await seed_directory(referrals)
    patient = await known_patient(referrals)
    case = (
        await referrals.client.post(
            CASES, json=referral_body(patient), headers=staff(referrals, "town1", Role.DOCTOR)
        )
    ).json()
    desk = staff(referrals, case["receiving_org_id"])
    accepted = await command(
        referrals,
        case["referral_id"],
        "accept",
        desk,
        {"department_id": f"{case['receiving_org_id']}.CARD"},
    )
    case = accepted.json()
    url = f"{CASES}/{case['referral_id']}"
    stale = make_event(
        AppointmentBooked(**visit(case, "an-older-ask", new_id())),
        source="appointments",
        subject=patient,
    )
    appointment_id = new_id()
    ask = case["booking"]["booking_request_id"]
    booked = make_event(
        AppointmentBooked(**visit(case, ask, appointment_id)),
        source="appointments",
        subject=patient,
    )
    await publish_events(referrals.settings, "appointments", [stale, booked])

    async def state() -> dict[str, Any]:
        return dict((await referrals.client.get(url, headers=referrals.service)).json())

    async def is_booked() -> bool:
        return (await state())["business_status"] == "booked"

    await wait_until(is_booked, timeout=30, what="the case booked")
    current = await state()
    assert current["booking"]["appointment_id"] == appointment_id  # not the stale reply's
    assert current["status"] == "in-progress"

    no_show = make_event(
        AppointmentNoShow(**visit(case, ask, appointment_id), no_shows_in_window=1),
        source="appointments",
        subject=patient,
    )
    await publish_events(referrals.settings, "appointments", [no_show, no_show])

    async def missed() -> bool:
        return (await state())["business_status"] == "no_show"

    await wait_until(missed, timeout=30, what="the case showing the no-show")
    history = [h["action"] for h in (await state())["history"]]
    assert history == ["create", "route", "accept", "booked", "no_show"]  # once each
