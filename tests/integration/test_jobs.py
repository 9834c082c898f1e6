"""Timed jobs: claimed with a lease, run once across workers, recovered after a crash."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from shared.jobs import JOBS, Job, JobRunner, JobSteps, Stepwise, cancel_job, schedule_job
from shared.mongo import Contended, Document, ensure_indexes
from shared.outbox import Outbox, Tx
from shared.service import PLATFORM_INDEXES
from shared.settings import ServiceSettings
from tests.support.kafka import wait_until

pytestmark = pytest.mark.integration


async def make_outbox(mongo: AsyncMongoClient[Document], settings: ServiceSettings) -> Outbox:
    db = mongo[settings.database_name]
    await ensure_indexes(db, PLATFORM_INDEXES)
    return Outbox(mongo, db, settings.own_topic)


async def test_two_workers_run_each_due_job_once(
    mongo: AsyncMongoClient[Document], make_settings: Callable[..., ServiceSettings]
) -> None:
    settings = make_settings()
    outbox = await make_outbox(mongo, settings)
    db = outbox.db

    async def remind(job: Job, tx: Tx) -> None:
        await db.effects.update_one(
            {"_id": job.payload["n"]}, {"$inc": {"runs": 1}}, upsert=True, session=tx.session
        )
        await asyncio.sleep(0.01)

    now = datetime.now(UTC)
    for n in range(30):
        await schedule_job(
            db, None, kind="remind", due_at=now - timedelta(seconds=1), payload={"n": n}
        )
    await schedule_job(db, None, kind="remind", due_at=now + timedelta(hours=1), payload={"n": 99})
    workers = [JobRunner(outbox, settings, {"remind": remind}, worker_id=f"w{i}") for i in range(2)]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        await wait_until(lambda: _done(db, 30), what="30 jobs done")
        await asyncio.sleep(0.3)
        runs = {d["_id"]: d["runs"] async for d in db.effects.find()}
        assert runs == {n: 1 for n in range(30)}  # the future job has not run
        assert sum(w.completed for w in workers) == 30
        assert all(w.completed > 0 for w in workers)
    finally:
        for w in workers:
            w.stop()
        await asyncio.gather(*tasks)


async def _done(db: object, n: int) -> bool:
    return await db[JOBS].count_documents({"status": "done"}) >= n  # type: ignore[index,no-any-return]


async def test_a_job_held_by_a_crashed_worker_runs_after_its_lease_expires(
    mongo: AsyncMongoClient[Document], make_settings: Callable[..., ServiceSettings]
) -> None:
    settings = make_settings(jobs_lease_seconds=1.5)
    outbox = await make_outbox(mongo, settings)
    db = outbox.db

    async def run(job: Job, tx: Tx) -> None:
        await db.effects.insert_one(
            {"_id": job.id, "by": tx.session is not None}, session=tx.session
        )

    job_id = await schedule_job(db, None, kind="sla", due_at=datetime.now(UTC))
    crashed = JobRunner(outbox, settings, {"sla": run}, worker_id="crashed")
    claimed = await crashed.claim_next()
    assert claimed is not None
    assert claimed.id == job_id
    # the crashed worker never completes; a live worker cannot take it before the lease ends
    survivor = JobRunner(outbox, settings, {"sla": run}, worker_id="survivor")
    assert await survivor.claim_next() is None
    task = asyncio.create_task(survivor.run())
    try:
        await wait_until(lambda: _done(db, 1), timeout=10, what="job recovered")
        doc = await db[JOBS].find_one({"_id": job_id})
        assert doc is not None
        assert doc["lease_owner"] == "survivor"
        assert doc["attempts"] == 2
        # the crashed worker wakes up late: its completion is refused and rolled back
        await crashed.run_job(claimed)
        assert crashed.completed == 0
        assert await db.effects.count_documents({}) == 1
    finally:
        survivor.stop()
        await task


async def test_keyed_jobs_move_and_cancel(
    mongo: AsyncMongoClient[Document], make_settings: Callable[..., ServiceSettings]
) -> None:
    settings = make_settings()
    outbox = await make_outbox(mongo, settings)
    db = outbox.db
    first = datetime.now(UTC) + timedelta(hours=24)
    moved = first + timedelta(days=2)
    job_id = await schedule_job(db, None, kind="reminder", due_at=first, key="appt-1:24h")
    assert await schedule_job(db, None, kind="reminder", due_at=moved, key="appt-1:24h") == job_id
    doc = await db[JOBS].find_one({"key": "appt-1:24h"})
    assert doc is not None
    assert abs((doc["due_at"] - moved).total_seconds()) < 0.002
    assert await db[JOBS].count_documents({}) == 1
    assert await cancel_job(db, None, "appt-1:24h")
    assert not await cancel_job(db, None, "appt-1:24h")
    doc = await db[JOBS].find_one({"_id": job_id})
    assert doc is not None
    assert doc["status"] == "cancelled"


async def test_a_stepwise_job_commits_each_step_under_its_lease_and_finishes_once(
    mongo: AsyncMongoClient[Document], make_settings: Callable[..., ServiceSettings]
) -> None:
    settings = make_settings(jobs_lease_seconds=1.5)
    outbox = await make_outbox(mongo, settings)
    db = outbox.db
    outside: list[bool] = []

    async def run(job: Job, steps: JobSteps) -> None:
        async def begin(tx: Tx) -> None:
            await db.effects.insert_one({"_id": "begun"}, session=tx.session)

        await steps.transaction(begin)
        # between the steps no transaction is open: what the first wrote is committed
        outside.append(await db.effects.find_one({"_id": "begun"}) is not None)

        async def end(tx: Tx) -> None:
            await steps.finish(tx)
            await db.effects.insert_one({"_id": "ended"}, session=tx.session)

        await steps.transaction(end)

    job_id = await schedule_job(db, None, kind="call", due_at=datetime.now(UTC))
    runner = JobRunner(outbox, settings, {"call": Stepwise(run)}, worker_id="w1")
    claimed = await runner.claim_next()
    assert claimed is not None
    await runner.run_job(claimed)
    assert outside == [True]
    assert runner.completed == 1
    doc = await db[JOBS].find_one({"_id": job_id})
    assert doc is not None
    assert (doc["status"], doc["attempts"]) == ("done", 1)
    assert {d["_id"] async for d in db.effects.find()} == {"begun", "ended"}

    # a worker that lost the lease between its steps cannot take the next one
    late_id = await schedule_job(db, None, kind="call", due_at=datetime.now(UTC))
    slow = JobRunner(outbox, settings, {"call": Stepwise(run)}, worker_id="slow")
    taken = await slow.claim_next()
    assert taken is not None
    await db[JOBS].update_one({"_id": late_id}, {"$set": {"lease_owner": "other"}})
    await db.effects.delete_many({})
    await slow.run_job(taken)
    assert slow.completed == 0
    assert await db.effects.count_documents({}) == 0


async def test_contention_gives_a_job_its_attempt_back(
    mongo: AsyncMongoClient[Document], make_settings: Callable[..., ServiceSettings]
) -> None:
    settings = make_settings(jobs_max_attempts=2)
    outbox = await make_outbox(mongo, settings)
    db = outbox.db
    conflicts = [Contended(12) for _ in range(4)]

    async def run(job: Job, tx: Tx) -> None:
        if conflicts:
            raise conflicts.pop()
        await db.effects.insert_one({"_id": job.id}, session=tx.session)

    job_id = await schedule_job(db, None, kind="sla", due_at=datetime.now(UTC))
    runner = JobRunner(outbox, settings, {"sla": run}, worker_id="w1")
    task = asyncio.create_task(runner.run())
    try:
        await wait_until(lambda: _done(db, 1), timeout=20, what="the job done")
        doc = await db[JOBS].find_one({"_id": job_id})
        assert doc is not None
        assert (doc["status"], doc["attempts"]) == ("done", 1)
        assert await db.effects.count_documents({}) == 1
    finally:
        runner.stop()
        await task


async def test_a_job_held_by_an_open_transaction_does_not_hold_up_the_others(
    mongo: AsyncMongoClient[Document], make_settings: Callable[..., ServiceSettings]
) -> None:
    """A worker killed inside a job's transaction leaves it open on the server (reaped after
    60 s), holding the job's document: the claim skips that job instead of waiting."""
    settings = make_settings()
    outbox = await make_outbox(mongo, settings)
    db = outbox.db

    async def run(job: Job, tx: Tx) -> None:
        await db.effects.insert_one({"_id": job.id}, session=tx.session)

    now = datetime.now(UTC)
    held = await schedule_job(db, None, kind="sla", due_at=now - timedelta(seconds=2))
    other = await schedule_job(db, None, kind="sla", due_at=now - timedelta(seconds=1))
    orphan = mongo.start_session()
    await orphan.start_transaction()
    await db[JOBS].update_one({"_id": held}, {"$set": {"status": "done"}}, session=orphan)
    runner = JobRunner(outbox, settings, {"sla": run}, worker_id="w1")
    task = asyncio.create_task(runner.run())
    try:
        await wait_until(lambda: _effect(db, other), timeout=10, what="the other job run")
        assert not await _effect(db, held)
        await orphan.abort_transaction()  # the server's reaper
        await wait_until(lambda: _effect(db, held), timeout=10, what="the held job run")
    finally:
        await orphan.end_session()
        runner.stop()
        await task


async def _effect(db: Any, job_id: str) -> bool:
    return await db.effects.find_one({"_id": job_id}) is not None
