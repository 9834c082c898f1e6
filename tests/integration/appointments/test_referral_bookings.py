"""The appointments side of the referral saga: referral events in, bookings and replies out.

Referral events are published to the referrals topic as the referrals service would (its
own payload models), and consumed by the running appointments service; its replies are
read back from the appointments topic.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.referrals.events import (
    BookingAsk,
    ReferralAccepted,
    ReferralBookingRequested,
    ReferralCancelled,
)
from shared.events import Envelope, make_event
from shared.ids import new_id
from shared.mongo import Database, Document
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


def facts(referral_id: str, patient_id: str) -> dict[str, Any]:
    return {
        "referral_id": referral_id,
        "patient_id": patient_id,
        "direction": "upward",
        "urgency": "routine",
        "status": "accepted",
        "business_status": "accepted",
        "sending_org_id": "c1",
        "receiving_org_id": ORG,
        "receiving_department_id": DEPARTMENT,
        "specialty": "cardiology",
        "diagnosis_code": "I20.9",
        "case_version": 2,
    }


def accepted(
    referral_id: str,
    patient_id: str,
    ask_id: str,
    *,
    preferred: date | None = None,
    earliest: date | None = None,
    again: bool = False,
) -> Envelope:
    ask = BookingAsk(
        booking_request_id=ask_id,
        org_id=ORG,
        department_id=DEPARTMENT,
        preferred_date=preferred,
        earliest_date=earliest,
    )
    model = ReferralBookingRequested if again else ReferralAccepted
    payload = model(**facts(referral_id, patient_id), booking=ask)
    return make_event(payload, source="referrals", subject=patient_id)


def cancelled(referral_id: str, patient_id: str, appointment_id: str | None) -> Envelope:
    payload = ReferralCancelled(
        **{**facts(referral_id, patient_id), "status": "cancelled"},
        reason="sender withdrew",
        appointment_id=appointment_id,
    )
    return make_event(payload, source="referrals", subject=patient_id)


REFERRALS = Asker("referrals", "booking_request_id", "referral_asks")
send, replies, answered = REFERRALS.send, REFERRALS.replies, REFERRALS.answered


@pytest.fixture
def db(appointments_api: Api, mongo: AsyncMongoClient[Document]) -> Database:
    return mongo[appointments_api.settings.database_name]


async def test_an_accepted_referral_is_booked_on_its_preferred_date_from_the_referral_pool(
    appointments_api: Api, db: Database
) -> None:
    api = appointments_api
    await api.publish(days_ahead=2)  # an earlier session: not the preferred date
    schedule = await api.publish(days_ahead=4)  # 10 numbers, 3 for referrals
    patient = await api.add_patient("acct-ref-1", name="转诊甲")
    ask_id, referral_id = new_id(), new_id()
    await send(api.settings, accepted(referral_id, patient["id"], ask_id, preferred=clinic_day(4)))

    ask = await answered(db, ask_id)
    assert ask["outcome"] == "booked", ask
    booking = await db.appointments.find_one({"_id": ask["appointment_id"]})
    assert booking is not None
    assert booking["schedule_id"] == schedule
    assert (booking["referral_id"], booking["booking_request_id"]) == (referral_id, ask_id)
    assert (booking["pool"], booking["channel"]) == ("referral", "referral")
    assert booking["booked_by"]["role"] == "service"
    assert booking["account_id"] == "acct-ref-1"  # the patient's own account
    (reply,) = await replies(api.settings, {ask_id})
    assert reply.type == "careloop.appointment.booked"
    assert reply.data["appointment_id"] == booking["_id"]
    assert (reply.data["referral_id"], reply.data["pool"]) == (referral_id, "referral")
    assert reply.data["booked_by_role"] == "service"


async def test_without_a_date_the_first_free_date_from_the_earliest_is_booked(
    appointments_api: Api, db: Database
) -> None:
    api = appointments_api
    day2 = await api.publish(days_ahead=2)
    day5 = await api.publish(days_ahead=5, doctor="D2")
    first, later = await api.add_patient("acct-ref-2a"), await api.add_patient("acct-ref-2b")
    any_day, from_day4 = new_id(), new_id()
    await send(
        api.settings,
        accepted(new_id(), first["id"], any_day),
        accepted(new_id(), later["id"], from_day4, earliest=clinic_day(4)),
    )
    for ask_id, schedule in ((any_day, day2), (from_day4, day5)):
        booking = await booking_of(db, await answered(db, ask_id))
        assert (booking["schedule_id"], booking["pool"]) == (schedule, "referral")


async def test_an_empty_referral_pool_is_a_rejection_with_a_code(
    appointments_api: Api, db: Database
) -> None:
    api = appointments_api
    await hold_back_no_reserved_numbers(api)
    await api.publish(days_ahead=3)  # public numbers only
    patient = await api.add_patient("acct-ref-3")
    ask_id, referral_id, unknown = new_id(), new_id(), new_id()
    await send(
        api.settings,
        accepted(referral_id, patient["id"], ask_id, preferred=clinic_day(3)),
        accepted(new_id(), "no-such-patient", unknown),
    )
    ask = await answered(db, ask_id)
    assert (ask["outcome"], ask["code"]) == ("rejected", "no_referral_slot")
    assert (await answered(db, unknown))["code"] == "patient_not_found"
    assert await db.appointments.count_documents({"referral_id": referral_id}) == 0
    found = await replies(api.settings, {ask_id, unknown})
    by_ask = {e.data["booking_request_id"]: e for e in found}
    assert len(found) == 2
    reply = by_ask[ask_id]
    assert reply.type == "careloop.appointment.booking.rejected"
    assert (reply.data["code"], reply.data["referral_id"]) == ("no_referral_slot", referral_id)
    assert reply.data["reason"]


async def test_a_redelivered_or_repeated_ask_books_once_and_a_second_ask_is_refused(
    appointments_api: Api, db: Database
) -> None:
    api = appointments_api
    schedule = await api.publish(days_ahead=3)
    await api.publish(days_ahead=3, doctor="D2", session="afternoon")
    patient = await api.add_patient("acct-ref-4")
    referral_id, ask_id, second_ask = new_id(), new_id(), new_id()
    event = accepted(referral_id, patient["id"], ask_id)
    same_ask = accepted(referral_id, patient["id"], ask_id)  # another event, the same ask
    another = accepted(referral_id, patient["id"], second_ask, again=True)
    await send(api.settings, event, event, same_ask, another)

    first = await answered(db, ask_id)
    assert first["outcome"] == "booked"
    refused = await answered(db, second_ask)
    assert (refused["outcome"], refused["code"]) == ("rejected", "referral_already_booked")
    found = await replies(api.settings, {ask_id, second_ask})
    assert sorted((e.data["booking_request_id"], e.type) for e in found) == sorted(
        [
            (ask_id, "careloop.appointment.booked"),
            (second_ask, "careloop.appointment.booking.rejected"),
        ]
    )
    live = await db.appointments.find({"referral_id": referral_id, "active": True}).to_list()
    assert [a["_id"] for a in live] == [first["appointment_id"]]
    assert live[0]["schedule_id"] == schedule  # D1's morning comes first
    assert await db.slots.count_documents({"appointment_id": live[0]["_id"]}) == 1


async def test_a_cancelled_referral_cancels_its_booking_and_frees_the_number(
    appointments_api: Api, db: Database
) -> None:
    api = appointments_api
    schedule = await api.publish(days_ahead=3)
    patient = await api.add_patient("acct-ref-5")
    referral_id, ask_id = new_id(), new_id()
    before = await reserved_left(api, schedule)
    await send(api.settings, accepted(referral_id, patient["id"], ask_id))
    ask = await answered(db, ask_id)
    assert ask["outcome"] == "booked"

    async def taken() -> bool:
        return await reserved_left(api, schedule) == before - 1

    await wait_until(taken, what="the referral number taken in admission")
    withdrawal = cancelled(referral_id, patient["id"], ask["appointment_id"])
    await send(api.settings, withdrawal, withdrawal)

    async def cancelled_now() -> bool:
        doc = await db.appointments.find_one({"_id": ask["appointment_id"]})
        return doc is not None and doc["status"] == "cancelled"

    await wait_until(cancelled_now, what="the referral's booking cancelled")
    doc = await db.appointments.find_one({"_id": ask["appointment_id"]})
    assert doc is not None
    assert (doc["cancel_reason"], doc["late_cancel"]) == ("referral_cancelled", False)
    assert doc["cancelled_by"]["role"] == "service"
    slot = await db.slots.find_one({"_id": doc["slot_id"]})
    assert slot is not None
    assert (slot["status"], slot["pool"]) == ("open", "referral")
    record = await db.patient_records.find_one({"_id": patient["id"]}) or {}
    assert record.get("late_cancels", []) == []  # no penalty for the patient

    async def returned() -> bool:
        return await reserved_left(api, schedule) == before

    await wait_until(returned, what="the number back in the referral pool")
    # the number is bookable again: another referral gets it
    other, other_ask = await api.add_patient("acct-ref-5b"), new_id()
    await send(api.settings, accepted(new_id(), other["id"], other_ask))
    assert (await answered(db, other_ask))["outcome"] == "booked"
    cancels = await db.outbox.count_documents({"headers.ce_type": "careloop.appointment.cancelled"})
    assert cancels == 1  # the redelivered cancellation changed nothing
