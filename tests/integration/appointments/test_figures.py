"""The dashboard's booking figures over real bookings, through the service's HTTP API."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import AsyncMongoClient

from shared.mongo import Document
from shared.principal import Role
from tests.integration.appointments.conftest import ORG, Api, clinic_day

pytestmark = pytest.mark.integration

URL = "/v1/appointments/figures"
BOOK = "/v1/appointments/appointments"


async def book(api: Api, headers: dict[str, str], patient_id: str, schedule: str) -> str:
    answer = await api.client.post(
        BOOK, headers=headers, json={"patient_id": patient_id, "schedule_id": schedule}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def test_figures_count_bookings_by_channel_and_the_outcomes_of_sessions(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api = appointments_api
    schedule = await api.publish(days_ahead=1)
    ids: list[str] = []
    for n in range(3):  # three bookings through the app, each account its own patient
        patient = await api.add_patient(f"acct-fig-{n}")
        ids.append(await book(api, api.token(f"acct-fig-{n}"), patient["id"], schedule))
    phoned = await api.add_patient("acct-fig-9")
    agent = {**api.token("agent-fig", Role.AGENT), "X-Access-Reason": "hotline call"}
    ids.append(await book(api, agent, phoned["id"], schedule))
    cancelled = await api.client.post(
        f"{BOOK}/{ids[0]}/cancel", headers=api.token("acct-fig-0"), json={"reason": "better"}
    )
    assert cancelled.status_code == 200, cancelled.text
    # the session's outcomes, as check-in and the no-show sweep leave them
    db = mongo[api.settings.database_name]
    await db["appointments"].update_one({"_id": ids[1]}, {"$set": {"status": "checked_in"}})
    await db["appointments"].update_one(
        {"_id": ids[3]}, {"$set": {"status": "no_show", "active": False}}
    )

    today, tomorrow = clinic_day(0).isoformat(), clinic_day(1).isoformat()
    query = {"date_from": today, "date_to": tomorrow}
    answer = await api.client.get(URL, params=query, headers=api.admin)
    assert answer.status_code == 200, answer.text
    figures: dict[str, Any] = answer.json()
    app_and_phone = {"app": 3, "hotline": 1, "onsite": 0, "referral": 0}
    assert figures["org_id"] == ORG
    assert (figures["date_from"], figures["date_to"]) == (today, tomorrow)
    assert figures["bookings"]["total"] == 4
    assert figures["bookings"]["by_channel"] == app_and_phone
    assert figures["bookings"]["by_day"] == [
        {"date": today, "total": 4, "by_channel": app_and_phone}
    ]
    assert figures["today"] == {"date": today, "total": 4, "by_channel": app_and_phone}
    assert figures["smart_booking_rate"] == 0.75
    assert figures["cancellations"] == 1
    assert figures["sessions"] == {
        "booked": 1,
        "checked_in": 1,
        "no_show": 1,
        "cancelled": 1,
        "no_show_rate": 0.5,
    }
    assert figures["no_show_rate"] == 0.5

    # the default period (the last 30 days up to today) holds the bookings, not the session
    default = (await api.client.get(URL, headers=api.admin)).json()
    assert default["date_to"] == today
    assert default["bookings"]["total"] == 4
    assert default["sessions"]["checked_in"] == 0
    assert default["no_show_rate"] is None
    # a move is not a new booking
    await db["appointments"].update_one({"_id": ids[2]}, {"$set": {"rescheduled_from": ids[0]}})
    moved = (await api.client.get(URL, params=query, headers=api.admin)).json()
    assert moved["bookings"]["by_channel"]["app"] == 2


async def test_figures_are_for_the_organizations_admins(appointments_api: Api) -> None:
    api = appointments_api
    alliance = api.token("alliance-1", Role.ALLIANCE_ADMIN, org=None)
    other_admin = api.token("admin-9", Role.ADMIN, org="h9")
    calls = [
        (api.token("agent-1", Role.AGENT), {}, 403, "forbidden_role"),
        (api.token("acct-1"), {}, 403, "forbidden_role"),
        (other_admin, {}, 200, None),  # its own organization's (empty) figures
        (other_admin, {"org_id": ORG}, 403, "forbidden_org"),
        (alliance, {}, 422, "org_id_required"),
        (alliance, {"org_id": ORG}, 200, None),
        (api.admin, {"date_from": "2026-02-02", "date_to": "2026-02-01"}, 422, "period_invalid"),
        (api.admin, {"date_from": "2024-01-01", "date_to": "2026-01-01"}, 422, "period_invalid"),
    ]
    for headers, params, status, code in calls:
        answer = await api.client.get(URL, params=params, headers=headers)
        assert answer.status_code == status, (params, answer.text)
        if code:
            assert answer.json()["code"] == code
    empty = (await api.client.get(URL, headers=other_admin)).json()
    assert (empty["org_id"], empty["bookings"]["total"], empty["smart_booking_rate"]) == (
        "h9",
        0,
        None,
    )
