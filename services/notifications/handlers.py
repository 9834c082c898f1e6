"""Where the notifications service registers its event handlers and timed jobs.

Every event type that has a message kind is handled by ``notify`` (staff kinds by
:mod:`.staff_alerts`); the appointment lifecycle events also move reminders, and the
patient events keep the recipients' contacts. Adding a message for a new event type needs
only a message kind file (and the producer's topic in ``CONSUMED_SERVICES``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from services.notifications.bootstrap import Notifications
from services.notifications.delivery import redeliver_topic
from services.notifications.dispatch import DELIVER_JOB
from services.notifications.messages import Source
from services.notifications.reminders import REMINDER_JOB
from services.notifications.settings import NotificationsSettings
from services.notifications.staff_alerts import alert_staff
from shared.consumer import ConsumerSpec, Handler
from shared.events import Envelope
from shared.jobs import Job, JobHandler, JobSteps, Stepwise
from shared.kafka import topic_name
from shared.outbox import Tx
from shared.service import Runtime

CONSUMED_SERVICES: tuple[str, ...] = ("appointments", "referrals", "followup")

Lifecycle = Callable[[Notifications, Envelope, Tx], Awaitable[None]]


async def notify(ctx: Notifications, event: Envelope, tx: Tx) -> None:
    """Send the message kind's message for this event, if any: to the patient, or for a
    staff kind (``audience = "staff"``) to the staff member the event names, never the
    patient."""
    kind = ctx.message_kinds.for_event(event.type, event.data)
    if kind is None:
        return
    if kind.for_staff:
        await alert_staff(ctx.dispatcher, ctx.staff_contacts, kind, event, tx)
        return
    data = event.data
    patient_id = data.get("patient_id") or event.subject
    account_id = data.get("account_id") or await ctx.recipients.first_account(patient_id, tx)
    source = Source(
        id=event.id,
        event_type=event.type,
        patient_id=patient_id,
        account_id=account_id,
        org_id=data.get("org_id"),
    )
    await ctx.dispatcher.dispatch(tx, kind, source, data)


async def booked(ctx: Notifications, event: Envelope, tx: Tx) -> None:
    await ctx.reminders.schedule(tx, event.data)
    await notify(ctx, event, tx)


async def cancelled(ctx: Notifications, event: Envelope, tx: Tx) -> None:
    await ctx.reminders.cancel(tx, event.data["appointment_id"])
    await notify(ctx, event, tx)


async def rescheduled(ctx: Notifications, event: Envelope, tx: Tx) -> None:
    await ctx.reminders.cancel(tx, event.data["previous_appointment_id"])
    await ctx.reminders.schedule(tx, event.data)
    await notify(ctx, event, tx)


async def checked_in(ctx: Notifications, event: Envelope, tx: Tx) -> None:
    await ctx.reminders.cancel(tx, event.data["appointment_id"])
    await notify(ctx, event, tx)


async def patient_registered(ctx: Notifications, event: Envelope, tx: Tx) -> None:
    data = event.data
    await ctx.recipients.patient_registered(
        tx.session,
        patient_id=data["patient_id"],
        account_id=data.get("account_id"),
        phone_enc=data["phone_enc"],
        phone_masked=data["phone_masked"],
    )


async def patient_unlinked(ctx: Notifications, event: Envelope, tx: Tx) -> None:
    data = event.data
    await ctx.recipients.patient_unlinked(
        tx.session, patient_id=data["patient_id"], account_id=data["account_id"]
    )


LINK_CODE_KIND = "patient.link_code"
LINK_PHONE_CONTEXT = "patient_verification.phone"  # as the appointments service encrypts
LINK_CODE_CONTEXT = "patient_verification.code"


async def verification_requested(ctx: Notifications, event: Envelope, tx: Tx) -> None:
    """Text the code that proves control of a patient record to the phone on record."""
    kind = ctx.message_kinds.get(LINK_CODE_KIND)
    if kind is None:
        raise RuntimeError(f"the message kind {LINK_CODE_KIND} is not installed")
    data, cipher = event.data, ctx.recipients.cipher
    vid = data["verification_id"]  # both are bound to their verification
    phone = cipher.decrypt(data["phone_enc"], context=LINK_PHONE_CONTEXT, record_id=vid)
    code = cipher.decrypt(data["code_enc"], context=LINK_CODE_CONTEXT, record_id=vid)
    source = Source(id=event.id, event_type=event.type, patient_id=None, account_id=None)
    context = {"code": code, "minutes": data["minutes"]}
    await ctx.dispatcher.dispatch(tx, kind, source, context, address=phone)


async def redelivery_requested(ctx: Notifications, event: Envelope, tx: Tx) -> None:
    await ctx.delivery.redeliver(tx, event.data["message_id"])


LIFECYCLE: dict[str, Lifecycle] = {
    "careloop.appointment.booked": booked,
    "careloop.appointment.cancelled": cancelled,
    "careloop.appointment.rescheduled": rescheduled,
    "careloop.appointment.checked_in": checked_in,
    "careloop.patient.registered": patient_registered,
    "careloop.patient.unlinked": patient_unlinked,
    "careloop.patient.verification_requested": verification_requested,
    "careloop.notification.redelivery_requested": redelivery_requested,
}


def consumer_topics(settings: NotificationsSettings) -> tuple[str, ...]:
    own = tuple(topic_name(settings, s) for s in CONSUMED_SERVICES)
    return (*own, redeliver_topic(settings))


def consumers(runtime: Runtime) -> list[ConsumerSpec]:
    ctx: Notifications = runtime.extras["notifications"]
    registered: dict[str, Lifecycle] = {t: notify for t in ctx.message_kinds.event_types()}
    registered.update(LIFECYCLE)
    handlers: dict[str, Handler] = {t: _bind(ctx, h) for t, h in registered.items()}
    assert isinstance(runtime.settings, NotificationsSettings)
    return [
        ConsumerSpec(name="events", topics=consumer_topics(runtime.settings), handlers=handlers)
    ]


def jobs(runtime: Runtime) -> dict[str, JobHandler]:
    def ctx() -> Notifications:
        context: Notifications = runtime.extras["notifications"]
        return context

    async def deliver(job: Job, steps: JobSteps) -> None:
        await ctx().delivery.deliver(job, steps)

    async def remind(job: Job, tx: Tx) -> None:
        await ctx().reminders.fire(job, tx)

    return {DELIVER_JOB: Stepwise(deliver), REMINDER_JOB: remind}


def _bind(ctx: Notifications, handler: Lifecycle) -> Handler:
    async def run(event: Envelope, tx: Tx) -> None:
        await handler(ctx, event, tx)

    return run
