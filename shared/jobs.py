"""Timed jobs (docs/architecture.md §6): stored in Mongo with a due time, claimed with a lease.

Two workers never run one job: a claim is an atomic ``find_one_and_update``. A worker that
dies holding a job leaves a lease that expires; another worker then claims it. A job's
effects and its completion commit in one transaction that checks the lease is still ours,
so a job whose lease was taken over cannot also complete.

A job that must call another system (a provider) cannot hold a transaction across the
call: a worker killed in the middle would leave it open on the server, holding the job
until the server reaps it. Such a handler is :class:`Stepwise`: it gets :class:`JobSteps`,
runs short transactions that each check (and renew) the lease, calls out between them,
and finishes the job in one of them (``steps.finish(tx)``). Write contention never uses up a
job's attempts: the job is tried again shortly.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import structlog
from pymongo import ASCENDING, IndexModel, ReturnDocument

from shared.ids import new_id
from shared.metrics import ServiceMetrics
from shared.mongo import (
    CollectionIndexes,
    Contended,
    Database,
    Document,
    Session,
    in_transaction,
)
from shared.outbox import Outbox, Tx, is_contention
from shared.settings import ServiceSettings

log = structlog.get_logger(__name__)
T = TypeVar("T")

JOBS = "jobs"
CLAIM_CANDIDATES = 8  # due jobs tried per claim, past any held by an open transaction
JOB_INDEXES = CollectionIndexes(
    JOBS,
    [
        IndexModel([("status", ASCENDING), ("due_at", ASCENDING)], name="due"),
        IndexModel([("status", ASCENDING), ("lease_until", ASCENDING)], name="leases"),
        IndexModel(
            [("key", ASCENDING)],
            name="key",
            unique=True,
            partialFilterExpression={"key": {"$type": "string"}},
        ),
    ],
)


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    due_at: datetime
    payload: dict[str, Any]
    attempts: int
    key: str | None

    @classmethod
    def from_document(cls, doc: Document) -> Job:
        return cls(
            id=doc["_id"],
            kind=doc["kind"],
            due_at=doc["due_at"],
            payload=doc.get("payload", {}),
            attempts=doc.get("attempts", 0),
            key=doc.get("key"),
        )


class LeaseLost(Exception):
    """Another worker took the job over: this run's effects are rolled back."""


class JobSteps:
    """The transactions of one run of a :class:`Stepwise` job, each under the job's lease."""

    def __init__(self, runner: JobRunner, job: Job) -> None:
        self._runner = runner
        self._job = job
        self.finished = False

    async def transaction(self, work: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``work`` in a transaction that first checks the lease is still ours and
        renews it (:class:`LeaseLost` if not)."""

        async def run(tx: Tx) -> T:
            await self._runner.hold_lease(self._job, tx, finish=False)
            return await work(tx)

        return await self._runner.outbox.transaction(run)

    async def finish(self, tx: Tx) -> None:
        """Mark the job done in ``tx`` (one of this run's transactions), before writes that
        may schedule it again under its key."""
        await self._runner.hold_lease(self._job, tx, finish=True)
        self.finished = True


@dataclass(frozen=True)
class Stepwise:
    """A job handler whose work does not fit in one transaction (see the module docstring).

    ``run`` finishes the job with ``steps.finish(tx)`` in one of its transactions; if it
    returns without, the runner marks the job done. An exception fails the run (tried again
    later; contention gives the attempt back).
    """

    run: Callable[[Job, JobSteps], Awaitable[None]]


JobHandler = Callable[[Job, Tx], Awaitable[None]] | Stepwise


async def schedule_job(
    db: Database,
    session: Session | None,
    *,
    kind: str,
    due_at: datetime,
    payload: dict[str, Any] | None = None,
    key: str | None = None,
) -> str:
    """Schedule a job; with ``key``, schedule or move the one job under that key."""
    now = datetime.now(UTC)
    fields = {
        "kind": kind,
        "due_at": due_at,
        "payload": payload or {},
        "status": "scheduled",
        "lease_owner": None,
        "lease_until": None,
        "updated_at": now,
    }
    if key is None:
        job_id = new_id()
        await db[JOBS].insert_one(
            {"_id": job_id, **fields, "attempts": 0, "created_at": now}, session=session
        )
        return job_id
    doc = await db[JOBS].find_one_and_update(
        {"key": key},
        {"$set": fields, "$setOnInsert": {"_id": new_id(), "attempts": 0, "created_at": now}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    assert doc is not None  # upsert with ReturnDocument.AFTER always returns the document
    return str(doc["_id"])


async def cancel_job(db: Database, session: Session | None, key: str) -> bool:
    result = await db[JOBS].update_one(
        {"key": key, "status": "scheduled"},
        {"$set": {"status": "cancelled", "updated_at": datetime.now(UTC)}},
        session=session,
    )
    return result.modified_count == 1


class JobRunner:
    def __init__(
        self,
        outbox: Outbox,
        settings: ServiceSettings,
        handlers: Mapping[str, JobHandler],
        *,
        worker_id: str,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.outbox = outbox
        self.db = outbox.db
        self.settings = settings
        self.handlers = dict(handlers)
        self.worker_id = worker_id
        self.metrics = metrics
        self.lease = timedelta(seconds=settings.jobs_lease_seconds)
        self._stopping = asyncio.Event()
        self.completed = 0

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                job = await self.claim_next()
                if job is None:
                    await self._sleep(self.settings.jobs_poll_seconds)
                    continue
                await self.run_job(job)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database unavailable: wait and try again
                log.warning("jobs.loop_error", error=str(exc), error_type=type(exc).__name__)
                await self._sleep(1.0)

    async def claim_next(self) -> Job | None:
        """Claim the job due first, skipping any that an open transaction holds.

        A worker killed inside a job's transaction leaves it open on the server until the
        server reaps it (60 s); a plain write to that job would wait all that while, and
        the whole runner with it. The claim therefore runs in a transaction of its own,
        where a conflict surfaces at once, and moves on to the next due job.
        """
        now = datetime.now(UTC)
        due: dict[str, Any] = {
            "kind": {"$in": list(self.handlers)},
            "$or": [
                {"status": "scheduled", "due_at": {"$lte": now}},
                {"status": "running", "lease_until": {"$lt": now}},
            ],
        }
        held: list[str] = []
        for _ in range(CLAIM_CANDIDATES):
            query = {**due, "_id": {"$nin": held}} if held else due
            candidate = await self.db[JOBS].find_one(query, {"_id": 1}, sort=[("due_at", 1)])
            if candidate is None:
                return None
            claim = functools.partial(self._claim, due, candidate["_id"], now)
            try:
                doc = await in_transaction(self.outbox.client, claim, max_retries=1)
            except Contended:
                held.append(candidate["_id"])
                log.info("job.claim_skipped_held", held_job_id=candidate["_id"])
                continue
            if doc is not None:
                return Job.from_document(doc)
        return None

    async def _claim(
        self, due: dict[str, Any], job_id: str, now: datetime, session: Session
    ) -> Document | None:
        return await self.db[JOBS].find_one_and_update(
            {**due, "_id": job_id},
            {
                "$set": {
                    "status": "running",
                    "lease_owner": self.worker_id,
                    "lease_until": now + self.lease,
                    "started_at": now,
                },
                "$inc": {"attempts": 1},
            },
            return_document=ReturnDocument.AFTER,
            session=session,
        )

    async def run_job(self, job: Job) -> None:
        handler = self.handlers[job.kind]
        structlog.contextvars.bind_contextvars(job_id=job.id, job_kind=job.kind)
        try:
            if isinstance(handler, Stepwise):
                steps = JobSteps(self, job)
                await handler.run(job, steps)
                if not steps.finished:
                    await steps.transaction(steps.finish)
            else:
                await self.outbox.transaction(lambda tx: self._complete(handler, job, tx))
            self.completed += 1
            self._count(job.kind, "done")
            log.info("job.done", attempts=job.attempts)
        except LeaseLost:
            self._count(job.kind, "lease_lost")
            log.warning("job.lease_lost")
        except Exception as exc:
            await self._fail(job, exc)
        finally:
            structlog.contextvars.unbind_contextvars("job_id", "job_kind")

    async def _complete(
        self, handler: Callable[[Job, Tx], Awaitable[None]], job: Job, tx: Tx
    ) -> None:
        await self.hold_lease(job, tx, finish=True)
        await handler(job, tx)

    async def hold_lease(self, job: Job, tx: Tx, *, finish: bool) -> None:
        """In ``tx``: check the job is still ours, then mark it done or renew the lease."""
        now = datetime.now(UTC)
        change = {"status": "done", "done_at": now} if finish else {"lease_until": now + self.lease}
        result = await self.db[JOBS].update_one(
            {"_id": job.id, "status": "running", "lease_owner": self.worker_id},
            {"$set": change},
            session=tx.session,
        )
        if result.matched_count != 1:
            raise LeaseLost(job.id)

    async def _fail(self, job: Job, exc: Exception) -> None:
        contended = is_contention(exc)  # not the job's fault: its attempt is given back
        final = not contended and job.attempts >= self.settings.jobs_max_attempts
        delay = random.uniform(0.1, 1.0) if contended else min(2**job.attempts, 300)  # noqa: S311
        await self.db[JOBS].update_one(
            {"_id": job.id, "lease_owner": self.worker_id, "status": "running"},
            {
                "$set": {
                    "status": "failed" if final else "scheduled",
                    "due_at": datetime.now(UTC) + timedelta(seconds=delay),
                    "lease_owner": None,
                    "lease_until": None,
                    "last_error": f"{type(exc).__name__}: {exc}"[:1000],
                },
                "$inc": {"attempts": -1 if contended else 0},
            },
        )
        outcome = "contended" if contended else "failed" if final else "retry"
        self._count(job.kind, outcome)
        log.warning(
            "job.contended" if contended else "job.failed",
            error=str(exc),
            error_type=type(exc).__name__,
            attempts=job.attempts,
            final=final,
        )

    def _count(self, kind: str, outcome: str) -> None:
        if self.metrics:
            self.metrics.jobs_run.labels(kind, outcome).inc()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def stop(self) -> None:
        self._stopping.set()
