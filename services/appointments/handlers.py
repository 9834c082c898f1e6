"""Where the appointments service registers its event handlers and timed jobs.

Consumed events (referral.accepted, followup.revisit_requested) get their handlers with
the referrals and follow-up work; until then the consumer reads them tolerantly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from services.appointments import changes, clinic, penalties, waitlist
from services.appointments.context import Appointments
from services.appointments.no_shows import sweep_no_shows
from services.appointments.schedules import NO_SHOW_JOB, POOL_RETURN_JOB
from shared.consumer import ConsumerSpec, Handler
from shared.jobs import Job, JobHandler
from shared.kafka import topic_name
from shared.outbox import Tx
from shared.service import Runtime

CONSUMED_SERVICES: tuple[str, ...] = ("referrals", "followup")
FEATURE_JOBS = {**waitlist.JOBS, **changes.JOBS, **clinic.JOBS, **penalties.JOBS}


def consumers(runtime: Runtime) -> list[ConsumerSpec]:
    handlers: dict[str, Handler] = {}
    topics = tuple(topic_name(runtime.settings, s) for s in CONSUMED_SERVICES)
    return [ConsumerSpec(name="events", topics=topics, handlers=handlers)]


def jobs(runtime: Runtime) -> dict[str, JobHandler]:
    def ctx() -> Appointments:
        context: Appointments = runtime.extras["appointments"]
        return context

    async def pool_return(job: Job, tx: Tx) -> None:
        await ctx().schedules.return_pools(job.payload["schedule_id"], tx)

    async def no_show_sweep(job: Job, tx: Tx) -> None:
        c = ctx()
        await sweep_no_shows(c.runtime.db, c.policies, c.records, job.payload["schedule_id"], tx)

    registered: dict[str, JobHandler] = {POOL_RETURN_JOB: pool_return, NO_SHOW_JOB: no_show_sweep}
    for kind, handler in FEATURE_JOBS.items():
        registered[kind] = _bind(ctx, handler)
    return registered


def _bind(
    ctx: Callable[[], Appointments],
    handler: Callable[[Appointments, Job, Tx], Awaitable[None]],
) -> JobHandler:
    async def run(job: Job, tx: Tx) -> None:
        await handler(ctx(), job, tx)

    return run
