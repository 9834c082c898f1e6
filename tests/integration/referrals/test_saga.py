"""The booking saga between referrals and appointments, both in-process on one test's topics:
a cancelled referral takes its booking with it (also when the cancel overtakes the booking),
a refused booking is asked again for another date, and the patient's own cancellation puts
the case back to be booked again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.appointments.settings import AppointmentsSettings
from services.appointments.store import APPOINTMENTS, REFERRAL_ASKS
from services.referrals.settings import ReferralsSettings
from shared.auth import TokenMinter
from shared.mongo import Database, Document
from shared.principal import Role
from shared.settings import ServiceSettings
from tests.integration.appointments.conftest import ORG, clinic_day
from tests.integration.appointments.conftest import Api as AppointmentsApi
from tests.integration.referrals.cases_support import command
from tests.integration.referrals.conftest import Api, running_referrals
from tests.integration.referrals.saga_support import (
    accept,
    case_of,
    coordinator,
    refer,
    running_appointments,
    seed_alliance,
    seed_hospital,
    sender,
)
from tests.support.kafka import wait_until

pytestmark = pytest.mark.integration

REFERRAL_NUMBERS = 3  # a session of 10: 30 % referral pool


@dataclass
class Saga:
    appts: AppointmentsApi
    referrals: Api
    appointments_db: Database
    visit_day: str  # h1's one cardiology session, two days ahead (D2, 08:00-12:00)
    schedule_id: str

    async def patient(self, account: str) -> str:
        return str((await self.appts.add_patient(account, "陈静"))["id"])

    async def appointments_of(self, referral_id: str) -> list[Document]:
        found = self.appointments_db[APPOINTMENTS].find({"referral_id": referral_id})
        return await found.to_list(None)

    async def free_referral_numbers(self) -> int:
        sessions = await self.appts.client.get(
            "/v1/appointments/schedules",
            params={"org_id": ORG, "date_from": self.visit_day, "date_to": self.visit_day},
            headers=self.appts.token("acct-browse"),
        )
        assert sessions.status_code == 200, sessions.text
        (session,) = [s for s in sessions.json() if s["id"] == self.schedule_id]
        return int(session["remaining"].get("referral", 0))

    async def until_case(self, referral_id: str, business_status: str) -> dict[str, Any]:
        async def reached() -> bool:
            case = await case_of(self.referrals, referral_id)
            return bool(case["business_status"] == business_status)

        await wait_until(reached, timeout=60, what=f"the case {business_status}")
        return await case_of(self.referrals, referral_id)


@pytest.fixture
async def saga(
    make_settings: Callable[..., ServiceSettings],
    minter: TokenMinter,
    mongo: AsyncMongoClient[Document],
) -> AsyncIterator[Saga]:
    appointments_settings = make_settings("appointments", AppointmentsSettings)
    async with (
        running_appointments(appointments_settings, minter) as appts,
        running_referrals(make_settings("referrals", ReferralsSettings), minter) as referrals,
    ):
        await seed_hospital(appts)
        schedule_id = await appts.publish(days_ahead=2, doctor="D2")
        await seed_alliance(referrals)
        db = mongo[appointments_settings.database_name]
        yield Saga(appts, referrals, db, clinic_day(2).isoformat(), schedule_id)


async def test_cancelling_a_booked_referral_cancels_its_booking(saga: Saga) -> None:
    referrals = saga.referrals
    case = await refer(referrals, await saga.patient("acct-saga-a"))
    referral_id = case["referral_id"]
    assert await saga.free_referral_numbers() == REFERRAL_NUMBERS
    await accept(referrals, case)
    booked = await saga.until_case(referral_id, "booked")
    appointment_id = booked["booking"]["appointment_id"]
    assert booked["status"] == "in-progress"
    assert await saga.free_referral_numbers() == REFERRAL_NUMBERS - 1

    no_if_match = await referrals.client.post(
        f"/v1/referrals/cases/{referral_id}/cancel",
        json={"reason": "患者选择就近治疗"},
        headers=sender(referrals),
    )
    assert no_if_match.status_code == 428, no_if_match.text
    cancelled = await command(
        referrals, referral_id, "cancel", sender(referrals), {"reason": "患者选择就近治疗"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"

    async def booking_cancelled() -> bool:
        (appointment,) = await saga.appointments_of(referral_id)
        return bool(appointment["status"] == "cancelled")

    await wait_until(booking_cancelled, timeout=60, what="the referral's booking cancelled")
    (appointment,) = await saga.appointments_of(referral_id)
    assert appointment["_id"] == appointment_id
    assert appointment["cancel_reason"] == "referral_cancelled"
    assert appointment["active"] is False
    assert appointment["late_cancel"] is False  # the service's cancel is never the patient's

    async def number_free() -> bool:
        return await saga.free_referral_numbers() == REFERRAL_NUMBERS

    await wait_until(number_free, timeout=30, what="the referral number free again")
    slot = await saga.appointments_db["slots"].find_one({"_id": appointment["slot_id"]})
    assert slot is not None
    assert (slot["status"], slot["pool"], slot.get("appointment_id")) == ("open", "referral", None)
    # the case stays cancelled: its booking's cancellation is the referral's own
    after = await case_of(referrals, referral_id)
    assert (after["status"], after["business_status"]) == ("cancelled", "cancelled")


async def test_a_cancel_overtaking_the_booking_leaves_no_live_appointment(saga: Saga) -> None:
    referrals = saga.referrals
    case = await refer(referrals, await saga.patient("acct-saga-b"))
    referral_id = case["referral_id"]
    accepted = await accept(referrals, case)
    ask = accepted["booking"]["booking_request_id"]
    # at once, without waiting for the booking: the ask is on its way to appointments
    cancelled = await command(
        referrals,
        referral_id,
        "cancel",
        sender(referrals),
        {"reason": "患者已转往上级医院"},
        version=accepted["version"],
    )
    if cancelled.status_code == 412:  # booked in between: a plain cancel of a booking then
        cancelled = await command(
            referrals, referral_id, "cancel", sender(referrals), {"reason": "患者已转往上级医院"}
        )
    assert cancelled.status_code == 200, cancelled.text

    asks = saga.appointments_db[REFERRAL_ASKS]

    async def answered() -> bool:
        return await asks.count_documents({"_id": ask}) == 1

    await wait_until(answered, timeout=60, what="appointments answering the booking ask")
    outcome = await asks.find_one({"_id": ask})
    assert outcome is not None

    async def none_live() -> bool:
        return all(not a["active"] for a in await saga.appointments_of(referral_id))

    await wait_until(none_live, timeout=60, what="no live appointment for the referral")
    made = await saga.appointments_of(referral_id)
    if outcome["outcome"] == "booked":  # the orphan, cancelled by the re-sent referral.cancelled
        assert [(a["_id"], a["status"], a["cancel_reason"]) for a in made] == [
            (outcome["appointment_id"], "cancelled", "referral_cancelled")
        ]

        async def number_free() -> bool:
            return await saga.free_referral_numbers() == REFERRAL_NUMBERS

        await wait_until(number_free, timeout=30, what="the orphan's number free again")
    else:
        assert made == []
    case = await case_of(referrals, referral_id)
    assert (case["status"], case["business_status"]) == ("cancelled", "cancelled")
    assert case["history"][-1]["action"] == "cancel"  # nothing after the cancel


async def test_a_refused_booking_is_asked_again_for_another_date(saga: Saga) -> None:
    referrals = saga.referrals
    case = await refer(referrals, await saga.patient("acct-saga-c"))
    referral_id = case["referral_id"]
    no_session = clinic_day(4).isoformat()
    accepted = await accept(referrals, case, preferred_date=no_session)
    assert accepted["booking"]["preferred_date"] == no_session

    failed = await saga.until_case(referral_id, "booking_failed")
    assert failed["status"] == "accepted"
    assert failed["booking"]["status"] == "rejected"
    assert failed["booking"]["code"] == "no_referral_slot"
    assert failed["booking"]["booking_request_id"] == accepted["booking"]["booking_request_id"]
    assert await saga.appointments_of(referral_id) == []

    again = await command(
        referrals,
        referral_id,
        "booking-requests",
        coordinator(referrals),
        {"preferred_date": saga.visit_day},
    )
    assert again.status_code == 200, again.text
    asked = again.json()
    assert asked["business_status"] == "awaiting_booking"
    second_ask = asked["booking"]["booking_request_id"]
    assert second_ask != accepted["booking"]["booking_request_id"]

    booked = await saga.until_case(referral_id, "booked")
    assert booked["status"] == "in-progress"
    assert booked["booking"]["booking_request_id"] == second_ask
    (appointment,) = await saga.appointments_of(referral_id)
    assert appointment["_id"] == booked["booking"]["appointment_id"]
    assert appointment["clinic_date"] == saga.visit_day
    assert appointment["booking_request_id"] == second_ask
    assert appointment["active"] is True


async def test_the_patient_cancelling_the_visit_puts_the_case_back_to_booking(
    saga: Saga,
) -> None:
    referrals = saga.referrals
    account = "acct-saga-d"
    case = await refer(referrals, await saga.patient(account))
    referral_id = case["referral_id"]
    await accept(referrals, case)
    booked = await saga.until_case(referral_id, "booked")
    appointment_id = booked["booking"]["appointment_id"]

    # the patient cancels in the mini-program, from their own account
    mine = saga.appts.token(account, Role.PATIENT)
    cancelled = await saga.appts.client.post(
        f"/v1/appointments/appointments/{appointment_id}/cancel",
        json={"reason": "时间冲突"},
        headers=mine,
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"

    back = await saga.until_case(referral_id, "booking_cancelled")
    assert back["status"] == "accepted"
    assert back["booking"]["status"] == "cancelled"
    assert back["booking"]["appointment_id"] == appointment_id
    assert back["booking"]["reason"] == "时间冲突"
    assert back["history"][-1]["action"] == "booking_cancelled"
    # and h1 may book it again
    again = await command(
        referrals,
        referral_id,
        "booking-requests",
        coordinator(referrals),
        {"preferred_date": saga.visit_day},
    )
    assert again.status_code == 200, again.text
    rebooked = await saga.until_case(referral_id, "booked")
    assert rebooked["booking"]["appointment_id"] != appointment_id
    live = [a for a in await saga.appointments_of(referral_id) if a["active"]]
    assert [a["_id"] for a in live] == [rebooked["booking"]["appointment_id"]]
