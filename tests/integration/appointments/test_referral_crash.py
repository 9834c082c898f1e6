"""Referral booking asks under a SIGKILL of the appointments process.

A stream of ``referral.accepted`` events is consumed by the service as its own process;
it is killed once the first asks are answered and the rest are in flight, and started
again. Every ask then has exactly one outcome (one appointment or one rejection, one
reply), and no number or patient is booked twice.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.appointments.settings import AdmissionSettings, AppointmentsSettings
from shared.auth import TokenMinter
from shared.ids import new_id
from shared.mongo import Document
from shared.settings import ServiceSettings
from tests.integration.appointments.conftest import Api, seed_master_data
from tests.integration.appointments.test_referral_bookings import accepted, replies, send
from tests.support.kafka import wait_until
from tests.support.service_process import Starter, wait_ready
from tests.support.service_process import restartable as restart_service

pytestmark = pytest.mark.integration

ASKS = 16
NUMBERS = 12  # 4 sessions of 10, 3 referral numbers each


@pytest.fixture
def restartable(
    make_settings: Callable[..., ServiceSettings], tmp_path: Path
) -> Iterator[tuple[ServiceSettings, Starter]]:
    no_room = AdmissionSettings(waiting_room_capacity=0)
    settings = make_settings("appointments", AppointmentsSettings, admission=no_room)
    with restart_service("appointments", settings, tmp_path) as start:
        yield settings, start


async def test_sigkill_under_referral_asks_answers_each_ask_once(
    restartable: tuple[ServiceSettings, Starter],
    minter: TokenMinter,
    mongo: AsyncMongoClient[Document],
) -> None:
    settings, start = restartable
    db = mongo[settings.database_name]
    first = start()
    base = f"http://127.0.0.1:{first.port}"
    await wait_ready(base)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        api = Api(base, client, minter, settings)
        await seed_master_data(api)
        schedules = [
            await api.publish(days_ahead=days, doctor=doctor)
            for days in (2, 3)
            for doctor in ("D1", "D2")
        ]
        patients = [await api.add_patient(f"acct-rk{n}", name=f"转诊{n}") for n in range(ASKS)]
    asks = [new_id() for _ in range(ASKS)]
    await send(
        settings,
        *(accepted(new_id(), p["id"], ask) for p, ask in zip(patients, asks, strict=True)),
    )

    async def some_answered() -> bool:
        return await db.referral_asks.count_documents({}) >= 3

    await wait_until(some_answered, timeout=60, interval=0.02, what="the first asks answered")
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    answered_before = await db.referral_asks.count_documents({})
    assert answered_before < ASKS, "the kill must land in the middle of the stream"

    second = start()
    await wait_ready(f"http://127.0.0.1:{second.port}")

    async def all_answered() -> bool:
        return await db.referral_asks.count_documents({}) == ASKS

    # a killed transaction holds its writes until the database reaps it (60 s)
    await wait_until(all_answered, timeout=150, interval=0.5, what="every ask answered")

    outcomes: Counter[str] = Counter()
    async for ask in db.referral_asks.find({"_id": {"$in": asks}}):
        outcomes[ask["outcome"]] += 1
        booked = await db.appointments.find({"booking_request_id": ask["_id"]}).to_list()
        if ask["outcome"] == "booked":
            assert [b["_id"] for b in booked] == [ask["appointment_id"]]
        else:
            assert (booked, ask["code"]) == ([], "no_referral_slot")
    assert outcomes == {"booked": NUMBERS, "rejected": ASKS - NUMBERS}, outcomes

    active = await db.appointments.find(
        {"schedule_id": {"$in": schedules}, "active": True}
    ).to_list()
    assert len(active) == NUMBERS
    assert len({a["slot_id"] for a in active}) == NUMBERS
    assert len({a["patient_id"] for a in active}) == NUMBERS
    assert {a["pool"] for a in active} == {"referral"}
    taken = await db.slots.count_documents({"schedule_id": {"$in": schedules}, "status": "booked"})
    assert taken == NUMBERS

    found = await replies(settings, set(asks), timeout=60)
    per_ask = Counter(e.data["booking_request_id"] for e in {e.id: e for e in found}.values())
    assert per_ask == dict.fromkeys(asks, 1), per_ask  # one reply each (by event id)
