"""Where the followup service's event handlers and timed jobs are registered (one visible place).

From the HIS (``careloop.his``): JSON discharges and admissions (``intake.py``). From
referrals: a completed downward referral starts a plan at the receiving center. From
appointments: its real-name patients (``patients.py``, matching waiting discharges), the
replies to revisit asks (``tasks.py``), check-ins (satisfaction surveys, ``surveys.py``).
Timed jobs: tasks falling due; surveys to send; complaints
escalating at their deadlines (``complaints.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from services.followup.bootstrap import Followup, built
from services.followup.complaint_records import ESCALATE_JOB
from services.followup.plans import TASK_DUE_JOB, PlanStart
from services.followup.surveys import SURVEY_SEND_JOB
from services.followup.tasks import CHASE_JOB
from shared.consumer import ConsumerSpec, Handler
from shared.events import Envelope
from shared.jobs import Job, JobHandler
from shared.kafka import topic_name
from shared.outbox import Tx
from shared.service import Runtime

CONSUMED_SERVICES: tuple[str, ...] = ("his", "referrals", "appointments")

Reaction = Callable[[Followup, Envelope, Tx], Awaitable[None]]


async def his_discharge(ctx: Followup, event: Envelope, tx: Tx) -> None:
    await ctx.intake.json_discharge(tx, event.id, event.data)


async def his_admitted(ctx: Followup, event: Envelope, tx: Tx) -> None:
    await ctx.intake.json_admitted(tx, event.id, event.data)


async def referral_completed(ctx: Followup, event: Envelope, tx: Tx) -> None:
    """A downward referral hands the patient to the receiving center's follow-up."""
    data = event.data
    if data.get("direction") != "downward" or not data.get("receiving_org_id"):
        return
    start = PlanStart(
        patient_id=data["patient_id"],
        org_id=data["receiving_org_id"],
        source="referral",
        source_id=data["referral_id"],
        started_at=datetime.fromisoformat(data["completed_at"]),
        department_id=data.get("receiving_department_id"),
        diagnosis_codes=(data["diagnosis_code"],) if data.get("diagnosis_code") else (),
        note=data.get("follow_up_advice"),
    )
    await ctx.plans.start(tx, start)


async def patient_registered(ctx: Followup, event: Envelope, tx: Tx) -> None:
    data = event.data
    digest = data.get("national_id_hash")
    await ctx.patients.registered(
        tx.session,
        patient_id=data["patient_id"],
        account_id=data.get("account_id"),
        national_id_hash=digest,
    )
    if digest:
        await ctx.discharges.patient_registered(tx, data["patient_id"], digest)


async def patient_unlinked(ctx: Followup, event: Envelope, tx: Tx) -> None:
    data = event.data
    await ctx.patients.unlinked(
        tx.session, patient_id=data["patient_id"], account_id=data["account_id"]
    )


async def appointment_booked(ctx: Followup, event: Envelope, tx: Tx) -> None:
    if event.data.get("revisit_request_id"):
        await ctx.revisits.booked(tx, event.data)
        await ctx.risk_flags.revisit_replied(tx, event.data, booked=True)


async def booking_rejected(ctx: Followup, event: Envelope, tx: Tx) -> None:
    if event.data.get("revisit_request_id"):
        await ctx.revisits.rejected(tx, event.data)
        await ctx.risk_flags.revisit_replied(tx, event.data, booked=False)


async def appointment_checked_in(ctx: Followup, event: Envelope, tx: Tx) -> None:
    """An outpatient visit: a satisfaction survey follows it (``surveys.py``)."""
    await ctx.surveys.after_visit(tx, event.data, event.time)


REACTIONS: dict[str, Reaction] = {
    "careloop.his.discharge": his_discharge,
    "careloop.his.admitted": his_admitted,
    "careloop.referral.completed": referral_completed,
    "careloop.patient.registered": patient_registered,
    "careloop.patient.unlinked": patient_unlinked,
    "careloop.appointment.booked": appointment_booked,
    "careloop.appointment.booking.rejected": booking_rejected,
    "careloop.appointment.checked_in": appointment_checked_in,
}


def consumers(runtime: Runtime) -> list[ConsumerSpec]:
    ctx = built(runtime)
    handlers: dict[str, Handler] = {t: _bind(ctx, r) for t, r in REACTIONS.items()}
    topics = tuple(topic_name(runtime.settings, s) for s in CONSUMED_SERVICES)
    return [ConsumerSpec(name="events", topics=topics, handlers=handlers)]


def jobs(runtime: Runtime) -> dict[str, JobHandler]:
    async def task_due(job: Job, tx: Tx) -> None:
        await built(runtime).tasks.fire_due(job, tx)

    async def questionnaire_chase(job: Job, tx: Tx) -> None:
        await built(runtime).tasks.chase(job, tx)

    async def survey_send(job: Job, tx: Tx) -> None:
        await built(runtime).surveys.fire_send(job, tx)

    async def complaint_escalate(job: Job, tx: Tx) -> None:
        await built(runtime).complaints.escalate_due(job, tx)

    return {
        TASK_DUE_JOB: task_due,
        CHASE_JOB: questionnaire_chase,
        SURVEY_SEND_JOB: survey_send,
        ESCALATE_JOB: complaint_escalate,
    }


def _bind(ctx: Followup, reaction: Reaction) -> Handler:
    async def run(event: Envelope, tx: Tx) -> None:
        await reaction(ctx, event, tx)

    return run
