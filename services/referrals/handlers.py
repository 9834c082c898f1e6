"""Where the referrals service's event handlers and timed jobs are registered (one visible place).

From appointments: the real-name patients (``known_patients``), the referral pool's
numbers (``pool_projection``), the booking saga's replies (``saga``) and the exams that
transports are tied to (``transport_links``: asked for by a booking with an escort, moved
and cancelled with them). From its own
topic: an accepted emergency referral asks for an ambulance transfer (``transport_links``).
Timed jobs: the acceptance deadline's escalation and re-route (``sla``) and the
transports' response and pickup deadlines (``transport_clock``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from services.referrals.bootstrap import Referrals, built
from services.referrals.case_routing import ESCALATE, REROUTE
from services.referrals.transport_clock import PICKUP, RESPONSE
from shared.consumer import ConsumerSpec, Handler
from shared.events import Envelope
from shared.jobs import Job, JobHandler
from shared.kafka import topic_name
from shared.outbox import Tx
from shared.service import Runtime

CONSUMED_SERVICES: tuple[str, ...] = ("appointments", "referrals")

Reaction = Callable[[Referrals, Envelope, Tx], Awaitable[None]]


async def patient_registered(ctx: Referrals, event: Envelope, tx: Tx) -> None:
    data = event.data
    await ctx.patients.registered(
        tx.session, patient_id=data["patient_id"], account_id=data.get("account_id")
    )


async def patient_unlinked(ctx: Referrals, event: Envelope, tx: Tx) -> None:
    data = event.data
    await ctx.patients.unlinked(
        tx.session, patient_id=data["patient_id"], account_id=data["account_id"]
    )


async def schedule_published(ctx: Referrals, event: Envelope, tx: Tx) -> None:
    await ctx.pool.schedule_published(tx.session, event.data)


async def schedule_cancelled(ctx: Referrals, event: Envelope, tx: Tx) -> None:
    await ctx.pool.schedule_cancelled(tx.session, event.data)


async def booked(ctx: Referrals, event: Envelope, tx: Tx) -> None:
    await ctx.pool.number_taken(tx.session, event.data, +1)
    await _seen(ctx, event, tx)
    await ctx.saga.booked(event, tx)
    await ctx.transport_links.appointment_booked(event, tx)


async def cancelled(ctx: Referrals, event: Envelope, tx: Tx) -> None:
    await ctx.pool.number_taken(tx.session, event.data, -1)
    await ctx.saga.cancelled(event, tx)
    await ctx.transport_links.appointment_cancelled(event, tx)


async def booking_rejected(ctx: Referrals, event: Envelope, tx: Tx) -> None:
    await ctx.saga.booking_rejected(event, tx)


async def checked_in(ctx: Referrals, event: Envelope, tx: Tx) -> None:
    await _seen(ctx, event, tx)
    await ctx.saga.checked_in(event, tx)


async def _seen(ctx: Referrals, event: Envelope, tx: Tx) -> None:
    data = event.data
    await ctx.patients.seen_at(tx.session, patient_id=data["patient_id"], org_id=data.get("org_id"))


async def no_show(ctx: Referrals, event: Envelope, tx: Tx) -> None:
    await ctx.saga.no_show(event, tx)


async def rescheduled(ctx: Referrals, event: Envelope, tx: Tx) -> None:
    await ctx.saga.rescheduled(event, tx)
    await ctx.transport_links.appointment_rescheduled(event, tx)


async def referral_accepted(ctx: Referrals, event: Envelope, tx: Tx) -> None:
    await ctx.transport_links.referral_accepted(event, tx)


REACTIONS: dict[str, Reaction] = {
    "careloop.patient.registered": patient_registered,
    "careloop.patient.unlinked": patient_unlinked,
    "careloop.appointment.schedule.published": schedule_published,
    "careloop.appointment.schedule.cancelled": schedule_cancelled,
    "careloop.appointment.booked": booked,
    "careloop.appointment.cancelled": cancelled,
    "careloop.appointment.booking.rejected": booking_rejected,
    "careloop.appointment.checked_in": checked_in,
    "careloop.appointment.no_show": no_show,
    "careloop.appointment.rescheduled": rescheduled,
    "careloop.referral.accepted": referral_accepted,
}


def consumers(runtime: Runtime) -> list[ConsumerSpec]:
    ctx = built(runtime)
    handlers: dict[str, Handler] = {t: _bind(ctx, r) for t, r in REACTIONS.items()}
    topics = tuple(topic_name(runtime.settings, s) for s in CONSUMED_SERVICES)
    return [ConsumerSpec(name="events", topics=topics, handlers=handlers)]


def jobs(runtime: Runtime) -> dict[str, JobHandler]:
    async def escalate(job: Job, tx: Tx) -> None:
        await built(runtime).sla.escalate(job, tx)

    async def reroute(job: Job, tx: Tx) -> None:
        await built(runtime).sla.reroute(job, tx)

    async def transport_deadline(job: Job, tx: Tx) -> None:
        await built(runtime).transport_clock.escalate(job, tx)

    return {
        ESCALATE: escalate,
        REROUTE: reroute,
        RESPONSE: transport_deadline,
        PICKUP: transport_deadline,
    }


def _bind(ctx: Referrals, reaction: Reaction) -> Handler:
    async def run(event: Envelope, tx: Tx) -> None:
        await reaction(ctx, event, tx)

    return run
