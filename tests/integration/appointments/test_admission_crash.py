"""A booking whose process dies between its Redis admission and its Mongo commit.

The first two tests leave exactly what such a crash leaves (an admission leased to a
replica that no longer beats, and for the retry case its Idempotency-Key claimed by that
replica) and check the end state: a retry with the same key completes the booking on
the same number, and without a retry the number and the patient are free again soon.
The last one SIGKILLs the service process under a stream of bookings and retries every
unanswered request with its key on a new process: one booking per patient, none refused
as a duplicate of itself, no number lost.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from services.appointments.admission import AdmissionGate, LeaseTerms, Outcome
from services.appointments.booking import BookRequest
from services.appointments.settings import AppointmentsSettings
from shared.auth import TokenMinter
from shared.idempotency import request_fingerprint
from shared.mongo import Document
from shared.settings import ServiceSettings
from tests.integration.appointments.conftest import Api, seed_master_data
from tests.support.rawhttp import final_booking_answer, post_json
from tests.support.service_process import Starter, wait_ready
from tests.support.service_process import restartable as restart_service

pytestmark = pytest.mark.integration

DEAD_REPLICA = "appointments@gone:4242:dead"  # no heartbeat: killed
# answers that say "not yet": the transaction a killed process left open still holds its
# writes until the database reaps it (60 s, as mongod's transactionLifetimeLimitSeconds)
# answers after which the app asks again: contention and a request still in progress (a
# waiting-room ticket held up by contention keeps its place: it is never "failed")
RETRY_LATER = {"write_conflict", "idempotency_in_progress", "booking_in_progress"}


@pytest.fixture
async def gate(appointments_api: Api) -> AsyncIterator[AdmissionGate]:
    redis: Redis = Redis.from_url(appointments_api.settings.redis_url, decode_responses=True)
    yield AdmissionGate(redis, appointments_api.settings.redis_key_prefix)
    await redis.aclose()


async def public_left(gate: AdmissionGate, schedule: str) -> int:
    return (await gate.remaining(schedule, ["public"]) or {}).get("public", -1)


async def test_a_retry_with_the_same_key_completes_the_booking_on_its_number(
    appointments_api: Api, gate: AdmissionGate, mongo: AsyncMongoClient[Document]
) -> None:
    api = appointments_api
    schedule = await api.publish(days_ahead=2, slot_count=10)
    patient = await api.add_patient("acct-crash", name="崩溃")
    key = "retry-after-crash-0001"
    scope = "acct-crash:book"
    body = BookRequest(patient_id=patient["id"], schedule_id=schedule)
    now = datetime.now(UTC)
    await mongo[api.settings.database_name].idempotency_keys.insert_one(
        {
            "_id": f"{scope}:{key}",
            "fingerprint": request_fingerprint(body.model_dump(mode="json")),
            "state": "in_progress",
            "created_at": now,
            "lease_until": now + timedelta(seconds=30),
            "owner": DEAD_REPLICA,
        }
    )
    before = await public_left(gate, schedule)
    terms = LeaseTerms(15_000, DEAD_REPLICA, f"{scope}:{key}")
    held = await gate.admit(schedule, patient["id"], ["public"], lease=terms)
    assert held.outcome is Outcome.ADMITTED

    retry = await api.client.post(
        "/v1/appointments/appointments",
        headers={**api.token("acct-crash"), "Idempotency-Key": key},
        json={"patient_id": patient["id"], "schedule_id": schedule},
    )
    assert retry.status_code == 201, retry.text
    assert retry.json()["slot_id"] == held.slot_id  # the number it was admitted to
    assert await public_left(gate, schedule) == before - 1
    assert await gate.lease_of(schedule, patient["id"]) is None  # settled
    again = await api.client.post(
        "/v1/appointments/appointments",
        headers={**api.token("acct-crash"), "Idempotency-Key": key},
        json={"patient_id": patient["id"], "schedule_id": schedule},
    )
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == retry.json()["id"]


async def test_without_a_retry_the_number_and_the_patient_are_freed(
    appointments_api: Api, gate: AdmissionGate
) -> None:
    api = appointments_api
    schedule = await api.publish(days_ahead=2, slot_count=10)
    patient = await api.add_patient("acct-gone", name="离开")
    before = await public_left(gate, schedule)
    held = await gate.admit(
        schedule, patient["id"], ["public"], lease=LeaseTerms(15_000, DEAD_REPLICA)
    )
    assert held.outcome is Outcome.ADMITTED
    assert await public_left(gate, schedule) == before - 1

    for _ in range(50):  # the reconciler runs every second
        if await gate.lease_of(schedule, patient["id"]) is None:
            break
        await asyncio.sleep(0.1)
    assert await gate.lease_of(schedule, patient["id"]) is None
    assert await public_left(gate, schedule) == before  # the number is for sale again
    booked = await api.client.post(
        "/v1/appointments/appointments",
        headers=api.token("acct-gone"),
        json={"patient_id": patient["id"], "schedule_id": schedule},
    )
    assert booked.status_code == 201, booked.text  # not refused as a duplicate


@pytest.fixture
def restartable(
    make_settings: Callable[..., ServiceSettings], tmp_path: Path
) -> Iterator[tuple[ServiceSettings, Starter]]:
    # admission, the waiting room and the Mongo claim under a kill
    settings = make_settings("appointments", AppointmentsSettings)
    with restart_service("appointments", settings, tmp_path) as start:
        yield settings, start


async def test_sigkill_under_a_booking_stream_loses_no_number_and_repeats_nothing(
    restartable: tuple[ServiceSettings, Starter],
    minter: TokenMinter,
    mongo: AsyncMongoClient[Document],
) -> None:
    settings, start = restartable
    first = start()
    base = f"http://127.0.0.1:{first.port}"
    await wait_ready(base)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        api = Api(base, client, minter, settings)
        await seed_master_data(api)
        schedule = await api.publish(days_ahead=2, slot_count=40)  # 20 public numbers
        patients = [await api.add_patient(f"acct-k{n}", name=f"患者{n}") for n in range(30)]

    def headers(n: int) -> dict[str, str]:
        return {**api.token(f"acct-k{n}"), "Idempotency-Key": f"kill-stream-{n:04d}"}

    def book(n: int, at: str) -> Any:
        body = {"patient_id": patients[n]["id"], "schedule_id": schedule}
        return post_json(at, "/v1/appointments/appointments", body, headers(n), timeout=10)

    async def first_try(n: int) -> Any:
        await asyncio.sleep(n * 0.02)
        try:
            return await book(n, base)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, IndexError, ValueError):
            return None  # the process died under it

    attempts = [asyncio.create_task(first_try(n)) for n in range(len(patients))]
    pending: set[asyncio.Task[Any]] = set(attempts)
    while pending:  # kill once the first bookings are through, the rest in flight
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if any(task.result() is not None for task in done):
            break
    first.proc.send_signal(signal.SIGKILL)
    answers = await asyncio.gather(*attempts)
    cut_off = sum(1 for a in answers if a is None)
    assert 0 < cut_off < len(answers), "the kill must land in the middle of the stream"

    second = start()
    base = f"http://127.0.0.1:{second.port}"
    await wait_ready(base)
    outcomes: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    until = loop.time() + 120  # a killed transaction holds its writes until it is reaped
    for n, answer in enumerate(answers):  # every request again, with its own key
        seen: list[str] = []
        while True:  # as a client does: again after Retry-After while it is not settled
            assert loop.time() < until, f"patient {n} got no answer in time: {seen[-5:]}"
            try:
                again = await book(n, base)
            except TimeoutError:  # waited on a killed transaction's writes: ask again
                seen.append("timeout")
                continue
            outcome, _ = await final_booking_answer(base, again, headers(n))
            seen.append(f"{again.status} {outcome}")
            if outcome not in RETRY_LATER or loop.time() > until:
                break
            await asyncio.sleep(1.0)
        outcomes[outcome] += 1
        assert outcome != "duplicate_booking", (n, again.body)
        if answer is not None and answer.status == 201:
            assert again.status == 201
            assert again.json()["id"] == answer.json()["id"]
    assert outcomes["booked"] == 20, outcomes
    assert outcomes["booked"] + outcomes["slot_sold_out"] == len(patients), outcomes

    db = mongo[settings.database_name]
    active = await db.appointments.find({"schedule_id": schedule, "active": True}).to_list()
    assert len(active) == 20
    assert len({a["patient_id"] for a in active}) == 20
    assert len({a["slot_id"] for a in active}) == 20
    booked_slots = await db.slots.count_documents({"schedule_id": schedule, "status": "booked"})
    assert booked_slots == 20
