"""The referral saga under a SIGKILL of the referrals process.

Appointments runs in-process; referrals runs as its own process. Six referrals are accepted
(each asks appointments for a visit from h1's referral pool: two sessions of 10, six
referral numbers) and the process is killed right after the last accept, while its outbox
relay and its consumer are mid-flight; a new process on the same settings takes over.
Every case then ends booked with exactly one appointment, no ask is answered twice, and
each accept went out as one event (docs/architecture.md §6: at least once, effects once).
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from devstack.processes import ManagedProcess
from services.appointments.settings import AppointmentsSettings
from services.appointments.store import APPOINTMENTS, REFERRAL_ASKS
from services.referrals.settings import ReferralsSettings
from services.referrals.store import CASES, PATIENTS
from shared.auth import TokenMinter
from shared.mongo import Document
from shared.outbox import OUTBOX
from shared.settings import ServiceSettings
from tests.integration.referrals.conftest import Api
from tests.integration.referrals.saga_support import (
    accept,
    refer,
    running_appointments,
    seed_alliance,
    seed_hospital,
)
from tests.support.kafka import read_topic, wait_until
from tests.support.service_process import Starter, wait_ready
from tests.support.service_process import restartable as restart_service

pytestmark = pytest.mark.integration

REFERRALS = 6  # two sessions of 10 at h1: 3 referral numbers each
ACCEPTED = "careloop.referral.accepted"


@pytest.fixture
def restartable(
    make_settings: Callable[..., ServiceSettings], tmp_path: Path
) -> Iterator[tuple[ServiceSettings, Starter]]:
    settings = make_settings("referrals", ReferralsSettings)
    with restart_service("referrals", settings, tmp_path) as start:
        yield settings, start


@contextlib.asynccontextmanager
async def referrals_api(
    proc: ManagedProcess, settings: ServiceSettings, minter: TokenMinter
) -> AsyncIterator[Api]:
    base = f"http://127.0.0.1:{proc.port}"
    await wait_ready(base)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        # the service runs in its own process: the app here is a stand-in, never served
        yield Api(base, client, minter, settings, FastAPI())


async def test_sigkill_of_referrals_mid_saga_books_each_case_once(
    make_settings: Callable[..., ServiceSettings],
    restartable: tuple[ServiceSettings, Starter],
    minter: TokenMinter,
    mongo: AsyncMongoClient[Document],
) -> None:
    settings, start = restartable
    appointments_settings = make_settings("appointments", AppointmentsSettings)
    referrals_db = mongo[settings.database_name]
    appointments_db = mongo[appointments_settings.database_name]
    first = start()
    async with running_appointments(appointments_settings, minter) as appts:
        await seed_hospital(appts)
        schedules = [await appts.publish(days_ahead=d, doctor="D2") for d in (2, 3)]
        patients = [
            str((await appts.add_patient(f"acct-sc{n}", name=f"转诊{n}"))["id"])
            for n in range(REFERRALS)
        ]

        async def all_known() -> bool:
            query = {"_id": {"$in": patients}}
            return await referrals_db[PATIENTS].count_documents(query) == REFERRALS

        async with referrals_api(first, settings, minter) as referrals:
            await seed_alliance(referrals)
            await wait_until(all_known, timeout=90, interval=0.2, what="referrals knowing them")
            cases = [await refer(referrals, p) for p in patients]
            half = REFERRALS // 2
            accepted = [await accept(referrals, c) for c in cases[:half]]

            async def replying() -> bool:  # replies on their way back to referrals
                return await appointments_db[REFERRAL_ASKS].count_documents({}) > 0

            await wait_until(replying, timeout=60, interval=0.02, what="the first ask answered")
            accepted += [await accept(referrals, c) for c in cases[half:]]
            first.kill()  # right after the last accept: relay and consumer mid-flight
            assert first.proc is not None
            first.proc.wait()
        ids = [c["referral_id"] for c in accepted]
        booked = {"_id": {"$in": ids}, "business_status": "booked"}
        booked_before = await referrals_db[CASES].count_documents(booked)
        print(
            "KILL",
            booked_before,
            await referrals_db[OUTBOX].count_documents({"status": "pending"}),
            await appointments_db[REFERRAL_ASKS].count_documents({}),
        )
        assert booked_before < REFERRALS, "the kill must land in the middle of the saga"
        asks = {c["referral_id"]: c["booking"]["booking_request_id"] for c in accepted}

        second = start()
        async with referrals_api(second, settings, minter):

            async def all_booked() -> bool:
                return await referrals_db[CASES].count_documents(booked) == REFERRALS

            # an open transaction of the killed process holds its documents until reaped
            await wait_until(all_booked, timeout=120, interval=0.5, what="every case booked")

            async def all_sent() -> bool:
                return await referrals_db[OUTBOX].count_documents({"status": "pending"}) == 0

            await wait_until(all_sent, timeout=60, what="the outbox relayed")

        by_case = {d["_id"]: d async for d in referrals_db[CASES].find({"_id": {"$in": ids}})}
        for referral_id in ids:
            case = by_case[referral_id]
            assert (case["status"], case["business_status"]) == ("in-progress", "booked"), case
            assert case["booking"]["booking_request_id"] == asks[referral_id]
            made = await appointments_db[APPOINTMENTS].find({"referral_id": referral_id}).to_list()
            assert [(a["_id"], a["active"]) for a in made] == [
                (case["booking"]["appointment_id"], True)
            ], made
            assert made[0]["booking_request_id"] == asks[referral_id]
        stuck = await referrals_db[CASES].count_documents({"business_status": "awaiting_booking"})
        assert stuck == 0
        answered = await appointments_db[REFERRAL_ASKS].find({}).to_list()
        assert sorted(a["_id"] for a in answered) == sorted(asks.values())
        assert {a["outcome"] for a in answered} == {"booked"}

        active = await appointments_db[APPOINTMENTS].find({"active": True}).to_list()
        assert len(active) == REFERRALS
        assert {a["schedule_id"] for a in active} == set(schedules)
        assert len({a["slot_id"] for a in active}) == REFERRALS
        assert {a["pool"] for a in active} == {"referral"}
        taken = await appointments_db["slots"].count_documents(
            {"schedule_id": {"$in": schedules}, "status": "booked"}
        )
        assert taken == REFERRALS

        # each accept went out as one event (a relay killed mid-batch may send a copy again:
        # the same event, which consumers drop by its id)
        topic = f"{settings.kafka_topic_prefix}.referrals"
        outbox = await referrals_db[OUTBOX].find({"topic": topic}, {"_id": 1}).to_list()
        written = {o["_id"] for o in outbox}
        seen: list[dict[str, Any]] = []

        async def all_read() -> bool:
            records = await read_topic(
                settings.kafka_bootstrap, topic, expected=len(written), timeout=30
            )
            seen[:] = [json.loads(r.value) for r in records]
            return written <= {e["id"] for e in seen}

        await wait_until(all_read, timeout=90, interval=0.5, what="the referrals topic read")
        accepts = {e["id"]: e for e in seen if e["type"] == ACCEPTED}
        per_ask = Counter(e["data"]["booking"]["booking_request_id"] for e in accepts.values())
        assert per_ask == dict.fromkeys(asks.values(), 1), per_ask
        assert {e["data"]["referral_id"] for e in accepts.values()} == set(ids)
