"""A doctor's cancelled session (停诊) and priority rebooking, through the service's HTTP API."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from services.appointments.admission import AdmissionGate
from services.appointments.schedules import ALL_POOLS
from shared.mongo import Database, Document
from shared.principal import Role
from tests.integration.appointments.conftest import Api

pytestmark = pytest.mark.integration

REASON = "王医生临时外出会诊"


def cancel_url(schedule: str) -> str:
    return f"/v1/appointments/admin/schedules/{schedule}/cancel"


async def book(api: Api, account: str, patient_id: str, schedule: str) -> dict[str, Any]:
    response = await api.client.post(
        "/v1/appointments/appointments",
        headers=api.token(account),
        json={"patient_id": patient_id, "schedule_id": schedule},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def booked_patients(api: Api, schedule: str, n: int) -> list[tuple[str, str, str]]:
    """``n`` accounts, each with a patient booked into ``schedule``: (account, patient, appt)."""
    out = []
    for i in range(n):
        account = f"acct-{i}"
        patient = await api.add_patient(account, name=f"患者{i}")
        out.append(
            (account, patient["id"], (await book(api, account, patient["id"], schedule))["id"])
        )
    return out


def service_db(api: Api, mongo: AsyncMongoClient[Document]) -> Database:
    return mongo[api.settings.database_name]


async def outbox_events(db: Database) -> list[dict[str, Any]]:
    return [json.loads(doc["value"]) async for doc in db["outbox"].find().sort("_id", 1)]


async def test_a_cancelled_session_cancels_every_booking_without_penalty(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api = appointments_api
    schedule = await api.publish(days_ahead=2)
    booked = await booked_patients(api, schedule, 3)
    coordinator = api.token("coord-1", Role.COORDINATOR)

    response = await api.client.post(
        cancel_url(schedule),
        headers={**coordinator, "Idempotency-Key": "his-cancel-0001"},
        json={"reason": REASON},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["cancelled_appointments"], body["rebooking_offers"]) == (
        "cancelled",
        3,
        3,
    )
    replay = await api.client.post(
        cancel_url(schedule),
        headers={**coordinator, "Idempotency-Key": "his-cancel-0001"},
        json={"reason": REASON},
    )
    assert replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == body
    again = await api.client.post(
        cancel_url(schedule), headers=coordinator, json={"reason": REASON}
    )
    assert again.status_code == 409
    assert again.json()["code"] == "schedule_already_cancelled"
    assert again.json()["detail_zh"]

    for account, patient_id, appointment_id in booked:
        mine = await api.client.get(
            f"/v1/appointments/appointments/{appointment_id}", headers=api.token(account)
        )
        assert mine.json()["status"] == "cancelled"
        status = await api.client.get(
            f"/v1/appointments/patients/{patient_id}/booking-status", headers=api.token(account)
        )
        assert status.status_code == 200, status.text
        assert status.json()["late_cancels"]["count"] == 0  # the hospital cancelled, not them
        assert status.json()["banned"] is False

    db = service_db(api, mongo)
    events = await outbox_events(db)
    cancelled = [e for e in events if e["type"] == "careloop.appointment.cancelled"]
    assert sorted(e["data"]["appointment_id"] for e in cancelled) == sorted(b[2] for b in booked)
    assert {e["subject"] for e in cancelled} == {b[1] for b in booked}
    assert all(e["data"]["cancelled_by_role"] == "hospital" for e in cancelled)
    assert all(e["data"]["reason"] == REASON and e["data"]["late"] is False for e in cancelled)
    sessions = [e for e in events if e["type"] == "careloop.appointment.schedule.cancelled"]
    assert len(sessions) == 1
    assert sessions[0]["subject"] == schedule
    assert sessions[0]["data"]["affected_appointments"] == 3

    assert await db["slots"].distinct("status", {"schedule_id": schedule}) == ["cancelled"]
    records = await db["patient_records"].find({"_id": {"$in": [b[1] for b in booked]}}).to_list()
    assert all(not r.get("late_cancels") for r in records)
    audit = Counter(
        a["action"] for a in await db["audit_log"].find({"actor_id": "coord-1"}).to_list()
    )
    assert audit == {"schedule.cancel": 1, "appointment.cancel": 3}

    redis: Redis = Redis.from_url(api.settings.redis_url, decode_responses=True)
    try:  # nobody is admitted to it any more
        gate = AdmissionGate(redis, api.settings.redis_key_prefix)
        assert await gate.remaining(schedule, ALL_POOLS) is None
    finally:
        await redis.aclose()
    newcomer = await api.add_patient("acct-new", name="新患者")
    refused = await api.client.post(
        "/v1/appointments/appointments",
        headers=api.token("acct-new"),
        json={"patient_id": newcomer["id"], "schedule_id": schedule},
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "schedule_cancelled"


async def test_patients_take_priority_rebooking_before_release_from_any_pool(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api = appointments_api
    cancelled = await api.publish(days_ahead=2)
    # another doctor of the same department, 10 days ahead: not released to the public yet;
    # two slots, one public and one reserved for referrals
    alternative = await api.publish(days_ahead=10, slot_count=2, doctor="D2")
    booked = await booked_patients(api, cancelled, 3)
    (first, first_patient, _), (second, second_patient, _), (third, third_patient, _) = booked
    early = await api.client.post(
        "/v1/appointments/appointments",
        headers=api.token(first),
        json={"patient_id": first_patient, "schedule_id": alternative},
    )
    assert early.status_code == 409
    assert early.json()["code"] == "slot_not_released"

    done = await api.client.post(cancel_url(cancelled), headers=api.admin, json={"reason": REASON})
    assert done.status_code == 200, done.text
    assert done.json()["alternatives"] == [alternative]

    offers = await api.client.get("/v1/appointments/rebooking-offers", headers=api.token(first))
    assert offers.status_code == 200, offers.text
    [offer] = offers.json()["items"]
    assert (offer["status"], offer["patient_id"], offer["reason"]) == (
        "open",
        first_patient,
        REASON,
    )
    assert offer["cancelled_schedule_id"] == cancelled
    assert [a["schedule_id"] for a in offer["alternatives"]] == [alternative]
    assert offer["alternatives"][0]["remaining"] == 2
    nobody = await api.client.get("/v1/appointments/rebooking-offers", headers=api.token("acct-x"))
    assert nobody.json()["items"] == []

    accept = f"/v1/appointments/rebooking-offers/{offer['id']}/accept"
    stranger = await api.client.post(
        accept, headers=api.token("acct-x"), json={"schedule_id": alternative}
    )
    assert stranger.status_code == 404
    assert stranger.json()["code"] == "rebooking_offer_not_found"
    wrong = await api.client.post(accept, headers=api.token(first), json={"schedule_id": cancelled})
    assert wrong.status_code == 409
    assert wrong.json()["code"] == "not_an_alternative"

    taken = await api.client.post(
        accept, headers=api.token(first), json={"schedule_id": alternative}
    )
    assert taken.status_code == 201, taken.text
    appointment = taken.json()
    assert (appointment["status"], appointment["schedule_id"]) == ("booked", alternative)
    assert appointment["patient_id"] == first_patient
    twice = await api.client.post(
        accept, headers=api.token(first), json={"schedule_id": alternative}
    )
    assert twice.status_code == 409
    assert twice.json()["code"] == "rebooking_offer_closed"
    [closed] = (
        await api.client.get("/v1/appointments/rebooking-offers", headers=api.token(first))
    ).json()["items"]
    assert (closed["status"], closed["appointment_id"]) == ("accepted", appointment["id"])

    pools = [appointment["pool"]]
    for account in (second, third):
        [other] = (
            await api.client.get("/v1/appointments/rebooking-offers", headers=api.token(account))
        ).json()["items"]
        response = await api.client.post(
            f"/v1/appointments/rebooking-offers/{other['id']}/accept",
            headers=api.token(account),
            json={"schedule_id": alternative},
        )
        if account == second:
            assert response.status_code == 201, response.text
            pools.append(response.json()["pool"])
        else:  # two slots, three patients: never a double booking
            assert response.status_code == 409
            assert response.json()["code"] == "slot_sold_out"
    assert sorted(pools) == ["public", "referral"]  # priority draws on reserved pools too

    db = service_db(api, mongo)
    active = await db["appointments"].find({"schedule_id": alternative, "active": True}).to_list()
    assert sorted(a["patient_id"] for a in active) == sorted([first_patient, second_patient])
    assert len({a["slot_id"] for a in active}) == 2
    assert third_patient not in {a["patient_id"] for a in active}
    booked_events = [
        e
        for e in await outbox_events(db)
        if e["type"] == "careloop.appointment.booked" and e["data"]["resource_name"] == "李医生"
    ]
    assert len(booked_events) == 2


async def test_only_session_staff_of_the_organization_may_cancel_a_session(
    appointments_api: Api,
) -> None:
    api = appointments_api
    schedule = await api.publish(days_ahead=2)
    patient = await api.add_patient("acct-1")
    body = {"reason": REASON}
    for headers, code in [
        (api.token("acct-1"), "forbidden_role"),
        (api.token("agent-1", Role.AGENT), "forbidden_role"),
        (api.token("coord-9", Role.COORDINATOR, org="h2"), "forbidden_org"),
    ]:
        response = await api.client.post(cancel_url(schedule), headers=headers, json=body)
        assert response.status_code == 403, response.text
        assert response.json()["code"] == code
    missing = await api.client.post(
        cancel_url("h1.D1.2030-01-01.morning"), headers=api.admin, json=body
    )
    assert missing.status_code == 404
    blank = await api.client.post(cancel_url(schedule), headers=api.admin, json={"reason": ""})
    assert blank.status_code == 422
    # the session is untouched: it still takes bookings
    assert (await book(api, "acct-1", patient["id"], schedule))["status"] == "booked"
