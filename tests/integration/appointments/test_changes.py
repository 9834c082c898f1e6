"""Reschedule, check-in with queue numbers and staff extra numbers, over the service's HTTP API.

Check-in needs a session whose window holds the real clock: ``session_around_now``
publishes one that starts in a minute or two (so it can still be booked) and whose
check-in window (opening 120 minutes before each slot) is already open.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from pymongo import AsyncMongoClient

from shared.mongo import Database, Document
from shared.principal import Role
from tests.integration.appointments.conftest import ORG, Api

pytestmark = pytest.mark.integration

SHANGHAI = ZoneInfo("Asia/Shanghai")
APPOINTMENTS = "/v1/appointments/appointments"


def session_around_now(minutes: int = 60) -> tuple[date, time, time]:
    """A session on one local date starting in 1-2 minutes, so check-in is open now.

    Near midnight the session is the first hour of tomorrow instead: it still starts
    less than two hours from now, so its check-in window is open as well.
    """
    start = (datetime.now(SHANGHAI) + timedelta(minutes=2)).replace(second=0, microsecond=0)
    end = start + timedelta(minutes=minutes)
    if end.date() != start.date():
        start = datetime.combine(end.date(), time(0, 0), tzinfo=SHANGHAI)
        end = start + timedelta(minutes=minutes)
    return start.date(), start.time(), end.time()


async def publish_at(
    api: Api,
    day: date,
    starts: time,
    ends: time,
    *,
    slot_count: int = 10,
    doctor: str = "D2",
    session: str = "night",
) -> str:
    body = [
        {
            "org_id": ORG,
            "resource_code": doctor,
            "clinic_date": day.isoformat(),
            "session": session,
            "starts": starts.isoformat(),
            "ends": ends.isoformat(),
            "slot_count": slot_count,
        }
    ]
    response = await api.client.post(
        "/v1/appointments/admin/schedules", json=body, headers=api.admin
    )
    assert response.status_code == 201, response.text
    return str(response.json()["schedules"][0]["schedule_id"])


async def publish_now(api: Api, slot_count: int = 10) -> str:
    """Today's session around now, once its reserved slots went back to the public pool.

    The pool-return job (due 24 h before the start) is overdue for such a session: wait
    for it, so the bookings below find all numbers public.
    """
    sid = await publish_at(api, *session_around_now(), slot_count=slot_count)
    for _ in range(300):
        listed = await api.client.get(
            "/v1/appointments/schedules",
            params={"org_id": ORG, "resource_id": f"{ORG}.D2", "date_from": sid.split(".")[-2]},
            headers=api.admin,
        )
        remaining = next(s["remaining"] for s in listed.json() if s["id"] == sid)
        if remaining.get("public") == slot_count:
            return sid
        await asyncio.sleep(0.1)
    raise AssertionError(f"reserved slots of {sid} never returned to the public pool")


async def book(
    api: Api, account: str, patient_id: str, schedule: str, slot_id: str | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"patient_id": patient_id, "schedule_id": schedule}
    if slot_id is not None:
        body["slot_id"] = slot_id
    return await api.client.post(APPOINTMENTS, headers=api.token(account), json=body)


async def booked(api: Api, account: str, patient_id: str, schedule: str) -> dict[str, Any]:
    response = await book(api, account, patient_id, schedule)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def reschedule(
    api: Api,
    headers: dict[str, str],
    appointment_id: str,
    access_reason: str | None = None,  # staff moving a booking on a patient's behalf
    **body: Any,
) -> httpx.Response:
    params = {"reason": access_reason} if access_reason else None
    return await api.client.post(
        f"{APPOINTMENTS}/{appointment_id}/reschedule", headers=headers, json=body, params=params
    )


async def check_in(api: Api, headers: dict[str, str], appointment_id: str) -> httpx.Response:
    return await api.client.post(f"{APPOINTMENTS}/{appointment_id}/check-in", headers=headers)


async def open_public_slots(api: Api, schedule: str) -> list[dict[str, Any]]:
    slots = await api.client.get(f"/v1/appointments/schedules/{schedule}/slots", headers=api.admin)
    return [s for s in slots.json() if s["available"] and s["pool"] == "public"]


def database(api: Api, mongo: AsyncMongoClient[Document]) -> Database:
    return mongo[api.settings.database_name]


async def events(db: Database, kind: str) -> list[dict[str, Any]]:
    entries = await db["outbox"].find({"headers.ce_type": f"careloop.{kind}"}).to_list()
    return [json.loads(e["value"]) for e in entries]


async def test_reschedule_moves_a_booking_and_frees_the_old_slot(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api, db = appointments_api, database(appointments_api, mongo)
    patient = await api.add_patient("acct-1")
    first = await api.publish(days_ahead=3, doctor="D1")
    # the same department on the same day: only allowed because the old booking moves
    second = await api.publish(days_ahead=3, doctor="D2")
    old = await booked(api, "acct-1", patient["id"], first)

    moved = await reschedule(api, api.token("acct-1"), old["id"], schedule_id=second)

    assert moved.status_code == 200, moved.text
    new = moved.json()
    assert new["id"] != old["id"]
    assert (new["status"], new["schedule_id"], new["resource_name"]) == ("booked", second, "李医生")
    assert new["rescheduled_from"] == old["id"]
    old_doc = await db["appointments"].find_one({"_id": old["id"]})
    assert old_doc is not None
    assert (old_doc["status"], old_doc["active"]) == ("rescheduled", False)
    assert old_doc["rescheduled_to"] == new["id"]
    read = await api.client.get(f"{APPOINTMENTS}/{new['id']}", headers=api.token("acct-1"))
    assert read.json()["status"] == "booked"
    [event] = await events(db, "appointment.rescheduled")
    assert event["subject"] == patient["id"]
    assert event["data"]["appointment_id"] == new["id"]
    assert event["data"]["previous_appointment_id"] == old["id"]
    old_slot = await db["slots"].find_one({"_id": old["slot_id"]})
    assert old_slot is not None
    assert old_slot["status"] == "open"
    assert "appointment_id" not in old_slot
    # the old numbered slot is back in admission: another patient books exactly it
    other = await api.add_patient("acct-2", name="李四")
    taken = await book(api, "acct-2", other["id"], first, slot_id=old["slot_id"])
    assert taken.status_code == 201, taken.text
    assert taken.json()["number"] == old["number"]
    again = await reschedule(api, api.token("acct-1"), old["id"], schedule_id=first)
    assert again.status_code == 409
    assert again.json()["code"] == "appointment_not_reschedulable"


async def test_reschedule_to_a_full_session_keeps_the_old_booking(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api, db = appointments_api, database(appointments_api, mongo)
    patient = await api.add_patient("acct-1")
    other = await api.add_patient("acct-2", name="李四")
    current = await api.publish(days_ahead=3, doctor="D1")
    full = await api.publish(days_ahead=4, doctor="D2", slot_count=1)
    await booked(api, "acct-2", other["id"], full)
    old = await booked(api, "acct-1", patient["id"], current)

    refused = await reschedule(api, api.token("acct-1"), old["id"], schedule_id=full)

    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "slot_sold_out"
    assert refused.json()["detail_zh"]
    still = await db["appointments"].find_one({"_id": old["id"]})
    assert still is not None
    assert (still["status"], still["active"]) == ("booked", True)
    slot = await db["slots"].find_one({"_id": old["slot_id"]})
    assert slot is not None
    assert slot["appointment_id"] == old["id"]
    assert await db["appointments"].count_documents({"patient_id": patient["id"]}) == 1
    assert await events(db, "appointment.rescheduled") == []
    # the old booking still holds its session: booking there again is a duplicate
    twice = await book(api, "acct-1", patient["id"], current)
    assert twice.json()["code"] == "duplicate_booking"


async def test_reschedule_within_the_same_session_to_another_numbered_slot(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api, db = appointments_api, database(appointments_api, mongo)
    patient = await api.add_patient("acct-1")
    schedule = await api.publish(days_ahead=3, doctor="D1")
    old = await booked(api, "acct-1", patient["id"], schedule)
    target = (await open_public_slots(api, schedule))[-1]
    me = api.token("acct-1")

    same = await reschedule(api, me, old["id"], schedule_id=schedule, slot_id=old["slot_id"])
    assert same.status_code == 409
    assert same.json()["code"] == "reschedule_same_slot"
    moved = await reschedule(api, me, old["id"], schedule_id=schedule, slot_id=target["id"])

    assert moved.status_code == 200, moved.text
    new = moved.json()
    assert (new["schedule_id"], new["slot_id"], new["number"]) == (
        schedule,
        target["id"],
        target["number"],
    )
    assert new["number"] != old["number"]
    active = await db["appointments"].find({"patient_id": patient["id"], "active": True}).to_list()
    assert [a["_id"] for a in active] == [new["id"]]
    new_slot = await db["slots"].find_one({"_id": target["id"]})
    assert new_slot is not None
    assert new_slot["appointment_id"] == new["id"]
    # the patient still holds this session; their old number is free for someone else
    twice = await book(api, "acct-1", patient["id"], schedule)
    assert twice.status_code == 409
    assert twice.json()["code"] == "duplicate_booking"
    other = await api.add_patient("acct-2", name="李四")
    taken = await book(api, "acct-2", other["id"], schedule, slot_id=old["slot_id"])
    assert taken.status_code == 201, taken.text


async def test_a_retried_reschedule_returns_the_first_result(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api, db = appointments_api, database(appointments_api, mongo)
    patient = await api.add_patient("acct-1")
    first = await api.publish(days_ahead=3, doctor="D1")
    second = await api.publish(days_ahead=5, doctor="D1")
    old = await booked(api, "acct-1", patient["id"], first)
    headers = {**api.token("acct-1"), "Idempotency-Key": "move-key-0001"}

    one = await reschedule(api, headers, old["id"], schedule_id=second)
    two = await reschedule(api, headers, old["id"], schedule_id=second)

    assert one.status_code == two.status_code == 200, (one.text, two.text)
    assert one.json()["id"] == two.json()["id"]
    assert two.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in one.headers
    assert await db["appointments"].count_documents({"patient_id": patient["id"]}) == 2
    assert len(await events(db, "appointment.rescheduled")) == 1
    reused = await reschedule(api, headers, old["id"], schedule_id=first)
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"


async def test_only_staff_move_a_booking_inside_the_cutoff_and_are_audited(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api, db = appointments_api, database(appointments_api, mongo)
    patient = await api.add_patient("acct-1")
    soon = await publish_now(api)
    later = await api.publish(days_ahead=3, doctor="D1")
    old = await booked(api, "acct-1", patient["id"], soon)

    late = await reschedule(api, api.token("acct-1"), old["id"], schedule_id=later)
    assert late.status_code == 409
    assert late.json()["code"] == "cancel_cutoff_passed"
    agent = api.token("agent-7", Role.AGENT)
    no_reason = await reschedule(api, agent, old["id"], schedule_id=later)
    assert (no_reason.status_code, no_reason.json()["code"]) == (400, "reason_required")
    moved = await reschedule(
        api, agent, old["id"], schedule_id=later, access_reason="patient called"
    )

    assert moved.status_code == 200, moved.text
    assert moved.json()["channel"] == "hotline"
    audit = await db["audit_log"].find({"action": "appointment.reschedule"}).to_list()
    assert [(a["actor_id"], a["patient_id"], a["reason"]) for a in audit] == [
        ("agent-7", patient["id"], "patient called")
    ]
    cancelled = await booked(api, "acct-1", patient["id"], soon)
    await api.client.post(
        f"{APPOINTMENTS}/{cancelled['id']}/cancel",
        headers=agent,
        json={"reason": "ill"},
        params={"reason": "patient called"},
    )
    refused = await reschedule(
        api, agent, cancelled["id"], schedule_id=later, access_reason="patient called"
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "appointment_not_reschedulable"
    assert refused.json()["current_status"] == "cancelled"


async def test_check_in_hands_out_queue_numbers_in_arrival_order(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api, db = appointments_api, database(appointments_api, mongo)
    first = await api.add_patient("acct-1")
    second = await api.add_patient("acct-2", name="李四")
    schedule = await publish_now(api)
    later = await api.publish(days_ahead=3, doctor="D1")
    a = await booked(api, "acct-1", first["id"], schedule)
    b = await booked(api, "acct-2", second["id"], schedule)
    stranger = await check_in(api, api.token("acct-2"), a["id"])
    assert stranger.status_code == 404

    by_patient = await check_in(api, api.token("acct-1"), a["id"])
    by_nurse = await check_in(api, api.token("nurse-3", Role.NURSE), b["id"])

    assert by_patient.status_code == 200, by_patient.text
    assert by_nurse.status_code == 200, by_nurse.text
    assert (by_patient.json()["status"], by_patient.json()["queue_number"]) == ("checked_in", 1)
    assert (by_nurse.json()["status"], by_nurse.json()["queue_number"]) == ("checked_in", 2)
    counter = await db["counters"].find_one({"_id": f"queue:{schedule}"})
    assert counter is not None
    assert counter["seq"] == 2
    checked = await events(db, "appointment.checked_in")
    assert sorted((e["data"]["appointment_id"], e["data"]["queue_number"]) for e in checked) == (
        sorted([(a["id"], 1), (b["id"], 2)])
    )
    audit = await db["audit_log"].find({"action": "appointment.check_in"}).to_list()
    assert [(x["actor_id"], x["patient_id"]) for x in audit] == [("nurse-3", second["id"])]

    again = await check_in(api, api.token("acct-1"), a["id"])
    assert again.status_code == 409
    assert again.json()["code"] == "already_checked_in"
    assert again.json()["detail_zh"]
    nurse = api.token("nurse-3", Role.NURSE)
    moved = await reschedule(api, nurse, a["id"], schedule_id=later, access_reason="at the desk")
    assert moved.status_code == 409
    assert moved.json()["code"] == "appointment_not_reschedulable"
    doctor = await check_in(api, api.token("doc-1", Role.DOCTOR), b["id"])
    assert doctor.status_code == 403
    assert (await db["counters"].find_one({"_id": f"queue:{schedule}"}) or {})["seq"] == 2


async def test_check_in_before_the_window_opens_is_refused(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api, db = appointments_api, database(appointments_api, mongo)
    patient = await api.add_patient("acct-1")
    schedule = await api.publish(days_ahead=3)
    appointment = await booked(api, "acct-1", patient["id"], schedule)

    early = await check_in(api, api.token("acct-1"), appointment["id"])

    assert early.status_code == 409
    assert early.json()["code"] == "checkin_not_open"
    assert early.json()["detail_zh"] == "尚未到签到时间"
    opens = datetime.fromisoformat(early.json()["opens_at"])
    assert opens == datetime.fromisoformat(appointment["starts_at"]) - timedelta(minutes=120)
    doc = await db["appointments"].find_one({"_id": appointment["id"]})
    assert doc is not None
    assert doc["status"] == "booked"
    assert "queue_number" not in doc
    assert await db["counters"].count_documents({}) == 0


async def test_a_nurse_adds_an_extra_number_beyond_a_full_session(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api, db = appointments_api, database(appointments_api, mongo)
    regular = await api.add_patient("acct-1")
    patient = await api.add_patient("acct-2", name="李四")
    schedule = await api.publish(days_ahead=2, doctor="D2", slot_count=1)
    await booked(api, "acct-1", regular["id"], schedule)
    full = await book(api, "acct-2", patient["id"], schedule)
    assert full.json()["code"] == "slot_sold_out"
    url = f"/v1/appointments/schedules/{schedule}/extra-numbers"
    nurse = api.token("nurse-3", Role.NURSE)

    added = await api.client.post(
        url, headers=nurse, json={"patient_id": patient["id"], "reason": "复诊患者需当日就诊"}
    )

    assert added.status_code == 201, added.text
    body = added.json()
    assert (body["status"], body["number"], body["channel"], body["extra"]) == (
        "booked",
        2,
        "onsite",
        True,
    )
    slot = await db["slots"].find_one({"_id": body["slot_id"]})
    assert slot is not None
    assert (slot["extra"], slot["status"], slot["appointment_id"]) == (True, "booked", body["id"])
    last = await db["slots"].find_one({"schedule_id": schedule, "number": 1})
    assert last is not None
    assert (slot["starts_at"], slot["ends_at"]) == (
        last["starts_at"],
        last["ends_at"],
    )
    [audit] = await db["audit_log"].find({"action": "appointment.extra_number"}).to_list()
    assert (audit["actor_id"], audit["patient_id"], audit["reason"]) == (
        "nurse-3",
        patient["id"],
        "复诊患者需当日就诊",
    )
    booked_events = await events(db, "appointment.booked")
    assert [e["data"]["channel"] for e in booked_events if e["subject"] == patient["id"]] == [
        "onsite"
    ]
    # limits still apply: one number per patient and session
    twice = await api.client.post(
        url, headers=nurse, json={"patient_id": patient["id"], "reason": "x"}
    )
    assert twice.status_code == 409
    assert twice.json()["code"] == "duplicate_booking"
    # the session stays full for everyone else, and the extra number never enters Redis
    listed = await api.client.get(
        "/v1/appointments/schedules",
        params={"org_id": ORG, "resource_id": f"{ORG}.D2", "date_from": schedule.split(".")[-2]},
        headers=api.admin,
    )
    [remaining] = [s["remaining"] for s in listed.json() if s["id"] == schedule]
    assert sum(remaining.values()) == 0
    cancelled = await api.client.post(
        f"{APPOINTMENTS}/{body['id']}/cancel",
        headers=nurse,
        json={"reason": "no longer needed"},
        params={"reason": "patient at the desk"},
    )
    assert cancelled.status_code == 200, cancelled.text
    third = await api.add_patient("acct-3", name="王五")
    still_full = await book(api, "acct-3", third["id"], schedule)
    assert still_full.json()["code"] == "slot_sold_out"
    doctor = api.token("doc-1", Role.DOCTOR)
    next_one = await api.client.post(
        url, headers=doctor, json={"patient_id": third["id"], "reason": "专家加号"}
    )
    assert next_one.status_code == 201, next_one.text
    assert (next_one.json()["number"], next_one.json()["channel"]) == (3, "hotline")


async def test_extra_numbers_are_staff_only_and_need_a_reason(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api, db = appointments_api, database(appointments_api, mongo)
    patient = await api.add_patient("acct-1")
    schedule = await api.publish(days_ahead=2, doctor="D2", slot_count=1)
    url = f"/v1/appointments/schedules/{schedule}/extra-numbers"

    by_patient = await api.client.post(
        url, headers=api.token("acct-1"), json={"patient_id": patient["id"], "reason": "please"}
    )
    no_reason = await api.client.post(
        url, headers=api.token("nurse-3", Role.NURSE), json={"patient_id": patient["id"]}
    )
    empty_reason = await api.client.post(
        url,
        headers=api.token("nurse-3", Role.NURSE),
        json={"patient_id": patient["id"], "reason": ""},
    )

    assert by_patient.status_code == 403
    assert by_patient.json()["code"] == "forbidden_role"
    assert no_reason.status_code == 422
    assert no_reason.json()["code"] == "validation_error"
    assert [e["field"] for e in no_reason.json()["errors"]] == ["body.reason"]
    assert empty_reason.status_code == 422
    assert await db["slots"].count_documents({"schedule_id": schedule, "extra": True}) == 0
    assert await db["appointments"].count_documents({}) == 0
    assert await db["audit_log"].count_documents({"action": "appointment.extra_number"}) == 0


async def test_concurrent_check_ins_get_distinct_consecutive_numbers(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api, db = appointments_api, database(appointments_api, mongo)
    schedule = await publish_now(api)
    appointments = []
    for n in range(6):
        patient = await api.add_patient(f"acct-{n}")
        appointments.append(await booked(api, f"acct-{n}", patient["id"], schedule))
    nurse = api.token("nurse-3", Role.NURSE)

    results = await asyncio.gather(*(check_in(api, nurse, a["id"]) for a in appointments))

    assert [r.status_code for r in results] == [200] * 6, [r.text for r in results]
    assert sorted(r.json()["queue_number"] for r in results) == [1, 2, 3, 4, 5, 6]
    stored = await db["appointments"].distinct("queue_number", {"schedule_id": schedule})
    assert sorted(stored) == [1, 2, 3, 4, 5, 6]
    assert len(await events(db, "appointment.checked_in")) == 6
