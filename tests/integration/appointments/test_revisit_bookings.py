"""Follow-up revisits: ``followup.revisit_requested`` in, a reserved-pool booking and a reply out.

Revisit asks are published to the followup topic as the followup service would (its own
payload model), and consumed by the running appointments service; its replies are read
back from the appointments topic.
"""

from __future__ import annotations

from datetime import date

import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from services.appointments.admission import AdmissionGate, LeaseTerms, Outcome
from services.followup.events import RevisitRequested
from shared.events import Envelope, make_event
from shared.handled_events import HANDLED_EVENTS
from shared.ids import new_id
from shared.mongo import Database, Document
from shared.replica_liveness import ReplicaLiveness
from tests.integration.appointments.conftest import ORG, Api, clinic_day
from tests.integration.appointments.reserved_asks import (
    Asker,
    booking_of,
    hold_back_no_reserved_numbers,
    reserved_left,
)
from tests.support.kafka import wait_until

pytestmark = pytest.mark.integration

DEPARTMENT = f"{ORG}.CARD"
BOOKED = "careloop.appointment.booked"
REJECTED = "careloop.appointment.booking.rejected"
REVISITS = Asker("followup", "revisit_request_id", "revisit_asks")
send, replies, answered = REVISITS.send, REVISITS.replies, REVISITS.answered


@pytest.fixture
def db(appointments_api: Api, mongo: AsyncMongoClient[Document]) -> Database:
    return mongo[appointments_api.settings.database_name]


def revisit(
    patient_id: str,
    ask_id: str,
    *,
    department: str | None = DEPARTMENT,
    doctor: str | None = None,
    earliest: date | None = None,
    latest: date | None = None,
    plan_id: str = "plan-1",
) -> Envelope:
    payload = RevisitRequested(
        plan_id=plan_id,
        patient_id=patient_id,
        org_id=ORG,
        department_id=department,
        doctor_id=doctor,
        revisit_request_id=ask_id,
        reason="risk_flag",
        earliest_date=earliest,
        latest_date=latest,
        flag_id=new_id(),
    )
    return make_event(payload, source="followup", subject=patient_id)


async def test_a_revisit_is_booked_from_the_reserved_pool_on_the_first_date_in_its_window(
    appointments_api: Api, db: Database
) -> None:
    api = appointments_api
    patient = await api.add_patient("acct-rv-1", name="复诊甲")
    await api.publish(days_ahead=2)  # before the earliest date
    schedule = await api.publish(days_ahead=4)  # 10 numbers, 3 reserved
    later = await api.publish(days_ahead=6, doctor="D2")
    ask_id, plan_id = new_id(), new_id()
    event = revisit(patient["id"], ask_id, earliest=clinic_day(3), plan_id=plan_id)
    await send(api.settings, event)

    ask = await answered(db, ask_id)
    assert (ask["outcome"], ask["plan_id"]) == ("booked", plan_id), ask
    booking = await db.appointments.find_one({"_id": ask["appointment_id"]})
    assert booking is not None
    assert booking["schedule_id"] == schedule
    assert booking["revisit_request_id"] == ask_id
    assert (booking["pool"], booking["channel"]) == ("referral", "referral")
    assert booking["booked_by"] == {"id": "service:followup", "role": "service"}
    assert booking["account_id"] == "acct-rv-1"  # the patient's own account
    assert booking["referral_id"] is None
    (reply,) = await replies(api.settings, {ask_id})
    assert reply.type == BOOKED
    assert reply.data["appointment_id"] == booking["_id"]
    assert (reply.data["pool"], reply.data["booked_by_role"]) == ("referral", "service")
    assert reply.data["booking_request_id"] is None
    # the latest date bounds the window: nothing reserved is free from day 5 to day 5
    # but day 6's, which is past it
    too_late, other = new_id(), await api.add_patient("acct-rv-1b")
    window = revisit(other["id"], too_late, earliest=clinic_day(5), latest=clinic_day(5))
    await send(api.settings, window)
    refused = await answered(db, too_late)
    assert (refused["outcome"], refused["code"]) == ("rejected", "no_reserved_slot")
    assert await db.appointments.count_documents({"schedule_id": later}) == 0


async def test_the_preferred_doctors_sessions_come_first(
    appointments_api: Api, db: Database
) -> None:
    api = appointments_api
    first = await api.publish(days_ahead=2)  # D1, the earliest session
    theirs = await api.publish(days_ahead=4, doctor="D2")
    resource = (await db.schedules.find_one({"_id": theirs}) or {})["resource_id"]
    one, two = await api.add_patient("acct-rv-2a"), await api.add_patient("acct-rv-2b")
    with_doctor, any_doctor = new_id(), new_id()
    await send(
        api.settings,
        revisit(one["id"], with_doctor, doctor=resource),
        revisit(two["id"], any_doctor),
    )
    asks = (with_doctor, any_doctor)
    booked = {ask: await booking_of(db, await answered(db, ask)) for ask in asks}
    assert {ask: b["schedule_id"] for ask, b in booked.items()} == {
        with_doctor: theirs,  # the doctor's session, though a day 2 one came first
        any_doctor: first,
    }
    assert {b["pool"] for b in booked.values()} == {"referral"}


async def test_no_free_reserved_number_is_a_rejection_with_a_code(
    appointments_api: Api, db: Database
) -> None:
    api = appointments_api
    patient = await api.add_patient("acct-rv-3")
    await hold_back_no_reserved_numbers(api)
    await api.publish(days_ahead=3)  # public numbers only
    ask_id = new_id()
    await send(api.settings, revisit(patient["id"], ask_id))

    ask = await answered(db, ask_id)
    assert (ask["outcome"], ask["code"]) == ("rejected", "no_reserved_slot")
    assert await db.appointments.count_documents({"patient_id": patient["id"]}) == 0
    (reply,) = await replies(api.settings, {ask_id})
    assert reply.type == REJECTED
    assert (reply.data["code"], reply.data["revisit_request_id"]) == ("no_reserved_slot", ask_id)
    assert (reply.data["patient_id"], reply.data["referral_id"]) == (patient["id"], None)
    assert reply.data["reason"]


async def test_the_same_ask_twice_books_once_and_replies_once(
    appointments_api: Api, db: Database
) -> None:
    api = appointments_api
    schedule = await api.publish(days_ahead=3)
    await api.publish(days_ahead=3, doctor="D2", session="afternoon")
    patient = await api.add_patient("acct-rv-4")
    ask_id = new_id()
    event = revisit(patient["id"], ask_id)
    same_ask = revisit(patient["id"], ask_id)  # another event, the same ask
    await send(api.settings, event, event, same_ask)

    ask = await answered(db, ask_id)
    assert ask["outcome"] == "booked"

    async def all_handled() -> bool:  # the consumer went past the third event
        handled = {"_id": {"$regex": f":{same_ask.id}$"}}
        return await db[HANDLED_EVENTS].count_documents(handled) > 0

    await wait_until(all_handled, what="the repeated ask handled")
    found = await replies(api.settings, {ask_id})
    assert [(e.data["revisit_request_id"], e.type) for e in found] == [(ask_id, BOOKED)]
    live = await db.appointments.find({"patient_id": patient["id"], "active": True}).to_list()
    assert [(a["_id"], a["schedule_id"]) for a in live] == [(ask["appointment_id"], schedule)]
    assert await db.slots.count_documents({"appointment_id": live[0]["_id"]}) == 1


async def test_an_unknown_patient_is_a_rejection_with_a_code(
    appointments_api: Api, db: Database
) -> None:
    api = appointments_api
    await api.publish(days_ahead=3)
    ask_id = new_id()
    await send(api.settings, revisit("no-such-patient", ask_id))
    ask = await answered(db, ask_id)
    assert (ask["outcome"], ask["code"]) == ("rejected", "patient_not_found")
    (reply,) = await replies(api.settings, {ask_id})
    assert (reply.type, reply.data["code"]) == (REJECTED, "patient_not_found")


async def test_a_plan_without_a_known_department_is_a_rejection_with_a_code(
    appointments_api: Api, db: Database
) -> None:
    api = appointments_api
    await api.publish(days_ahead=3)
    patient = await api.add_patient("acct-rv-6")
    no_department, unknown = new_id(), new_id()
    await send(
        api.settings,
        revisit(patient["id"], no_department, department=None),
        revisit(patient["id"], unknown, department=f"{ORG}.NOPE"),
    )
    assert (await answered(db, no_department))["code"] == "department_required"
    assert (await answered(db, unknown))["code"] == "department_not_found"
    found = await replies(api.settings, {no_department, unknown})
    codes = {e.data["revisit_request_id"]: (e.type, e.data["code"]) for e in found}
    assert codes == {
        no_department: (REJECTED, "department_required"),
        unknown: (REJECTED, "department_not_found"),
    }
    assert len(found) == 2
    assert await db.appointments.count_documents({"patient_id": patient["id"]}) == 0


async def test_an_ask_handled_again_after_a_crash_takes_its_own_number(
    appointments_api: Api, db: Database
) -> None:
    """A delivery of the ask was admitted and then lost before its transaction committed
    (the process crashed, or its consumer lost the partition): its lease, named by the ask,
    still holds a reserved number, and its replica still looks alive. The ask delivered
    again takes over that very lease (another ask would be refused as in progress) and
    books that number: none is lost or taken twice."""
    api = appointments_api
    schedule = await api.publish(days_ahead=3)
    patient = await api.add_patient("acct-rv-7")
    ask_id = new_id()
    before = await reserved_left(api, schedule)
    redis: Redis = Redis.from_url(api.settings.redis_url, decode_responses=True)
    try:
        gate = AdmissionGate(redis, api.settings.redis_key_prefix)
        prefix = api.settings.redis_key_prefix
        await ReplicaLiveness(redis, "replica-lost", prefix, ttl_seconds=60).beat()
        lost = LeaseTerms(60_000, owner="replica-lost", idempotency=f"revisit:{ask_id}")
        held = await gate.admit(schedule, patient["id"], ["referral"], lease=lost)
    finally:
        await redis.aclose()
    assert (held.outcome, held.pool) == (Outcome.ADMITTED, "referral"), held
    assert await reserved_left(api, schedule) == before - 1

    await send(api.settings, revisit(patient["id"], ask_id))
    ask = await answered(db, ask_id)
    assert ask["outcome"] == "booked", ask
    booking = await db.appointments.find_one({"_id": ask["appointment_id"]})
    assert booking is not None
    assert (booking["slot_id"], booking["request_ref"]) == (held.slot_id, f"revisit:{ask_id}")
    assert await reserved_left(api, schedule) == before - 1  # the one number, taken once
    (reply,) = await replies(api.settings, {ask_id})
    assert reply.type == BOOKED
