"""Slot-release surge: hundreds press "book" at once for a few slots.

500 distinct patients attempt the 50 public slots of one session concurrently: exactly
50 bookings, nobody twice, every refusal a 409 problem (directly, or as the answer of a
waiting-room ticket), never a 5xx, and everyone gets a definitive answer. Then Redis
loses the admission state and the service rebuilds it from Mongo without overbooking.

The size: ten patients a number and over fifteen times the admissions a session lets in
flight (``waiting_room_capacity``, 32): most attempts wait in the room as tickets (468 of
500 in a run) and are answered sold out once it is certain, and an admission that hands
a number out twice fails the test. The bench (``make bench``) runs the thousands.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.appointments.admission import AdmissionGate
from services.appointments.schedules import ALL_POOLS
from tests.integration.appointments.conftest import Api
from tests.support.rawhttp import RawResponse, final_booking_answer, post_json

pytestmark = pytest.mark.integration

ATTEMPTS = 500
PUBLIC_SLOTS = 50


async def register(api: Api, n: int) -> list[tuple[dict[str, str], str]]:
    sem = asyncio.Semaphore(40)

    async def one(i: int) -> tuple[dict[str, str], str]:
        async with sem:
            patient = await api.add_patient(f"surge-{i}", name=f"患者{i}")
            return api.token(f"surge-{i}"), patient["id"]

    return await asyncio.gather(*(one(i) for i in range(n)))


async def attempt(
    base: str, headers: dict[str, str], patient_id: str, schedule: str
) -> RawResponse:
    return await post_json(
        base,
        "/v1/appointments/appointments",
        {"patient_id": patient_id, "schedule_id": schedule},
        headers,
    )


async def test_five_hundred_concurrent_attempts_on_fifty_slots(
    appointments_process_api: Api,
) -> None:
    api = appointments_process_api
    schedule = await api.publish(days_ahead=2, slot_count=100, clinic_type="expert")
    slots = (
        await api.client.get(f"/v1/appointments/schedules/{schedule}/slots", headers=api.admin)
    ).json()
    assert Counter(s["pool"] for s in slots)["public"] == PUBLIC_SLOTS
    patients = await register(api, ATTEMPTS)

    started = time.perf_counter()

    async def to_the_end(headers: dict[str, str], pid: str) -> tuple[int, str, dict[str, Any]]:
        first = await attempt(api.base, headers, pid, schedule)
        outcome, detail = await final_booking_answer(api.base, first, headers)
        if isinstance(detail, dict):  # a ticket's answer
            return first.status, outcome, detail.get("appointment") or {}
        return first.status, outcome, first.json() if outcome == "booked" else {}

    answers = await asyncio.gather(*(to_the_end(h, pid) for h, pid in patients))
    elapsed = time.perf_counter() - started

    statuses = Counter(status for status, _, _ in answers)
    assert not [s for s in statuses if s >= 500], statuses
    assert set(statuses) <= {201, 202, 409}, statuses
    outcomes = Counter(outcome for _, outcome, _ in answers)
    assert outcomes == {"booked": PUBLIC_SLOTS, "slot_sold_out": ATTEMPTS - PUBLIC_SLOTS} or (
        outcomes["booked"] == PUBLIC_SLOTS
        and outcomes["booked"] + outcomes["slot_sold_out"] + outcomes["sold_out"] == ATTEMPTS
    ), outcomes
    booked = [view for _, outcome, view in answers if outcome == "booked"]
    assert len({b["patient_id"] for b in booked}) == PUBLIC_SLOTS
    assert len({b["slot_id"] for b in booked}) == PUBLIC_SLOTS
    assert {b["pool"] for b in booked} == {"public"}
    print(f"\nsurge: {ATTEMPTS} attempts answered in {elapsed:.2f}s: {dict(statuses)}")

    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(api.settings.mongo_url)
    try:
        db = mongo[api.settings.database_name]
        assert (
            await db.appointments.count_documents({"schedule_id": schedule, "active": True})
            == PUBLIC_SLOTS
        )
        assert (
            await db.slots.count_documents({"schedule_id": schedule, "status": "booked"})
            == PUBLIC_SLOTS
        )
    finally:
        await mongo.close()


async def test_admission_is_rebuilt_from_mongo_after_redis_loses_it(appointments_api: Api) -> None:
    api = appointments_api
    schedule = await api.publish(days_ahead=2, slot_count=20)  # 10 public slots
    patients = await register(api, 40)
    first = await asyncio.gather(*(attempt(api.base, h, pid, schedule) for h, pid in patients[:6]))
    assert [r.status for r in first] == [201] * 6

    gate = AdmissionGate(_redis(api), api.settings.redis_key_prefix)
    await gate.forget(schedule, ALL_POOLS)  # Redis restarted or evicted the keys
    assert await gate.remaining(schedule, ALL_POOLS) is None

    # the six who booked try again, with 34 newcomers, all at once
    second = await asyncio.gather(*(attempt(api.base, h, pid, schedule) for h, pid in patients))
    codes = Counter(r.status for r in second)
    assert codes[201] == 4, codes  # only the 4 public slots still open
    assert not [s for s in codes if s >= 500]
    again = [r.json()["code"] for r in second[:6]]
    assert set(again) == {"duplicate_booking"}
    assert (await gate.remaining(schedule, ALL_POOLS) or {})["public"] == 0
    await gate.redis.aclose()


def _redis(api: Api):  # type: ignore[no-untyped-def]
    from redis.asyncio import Redis

    return Redis.from_url(api.settings.redis_url, decode_responses=True)
