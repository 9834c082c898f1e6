"""What every way of booking shares: limits, the appointment document, idempotent replies.

Booking, waitlist offers, rescheduling, extra numbers and priority rebooking all create
appointments through ``new_appointment`` and check ``check_limits``, so a booking looks
the same whichever way it was made. Limits can leave out the appointment being moved (a
reschedule is not a new booking).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pymongo.errors import DuplicateKeyError

from services.appointments.catalog import Catalog
from services.appointments.domain import booking_rules
from services.appointments.domain.models import AppointmentStatus, Channel
from services.appointments.domain.policy import BookingPolicy
from services.appointments.store import APPOINTMENTS, RESOURCES
from services.appointments.views import FACT_FIELDS
from shared.idempotency import IdempotencyKeys, StoredResponse
from shared.mongo import Database, Document, Session
from shared.outbox import Outbox, Tx
from shared.principal import Principal
from shared.problems import Conflict

T = TypeVar("T")

# the facts a new appointment copies from its session's schedule and from its slot
SCHEDULE_FACTS = (
    *("org_id", "department_id", "resource_id", "resource_name", "resource_kind"),
    *("clinic_date", "session"),
)
SLOT_FACTS = ("number", "starts_at", "ends_at", "pool")

# a slot freed by a cancellation or a move: True if something (the waitlist) took it
SlotFreedHook = Callable[[Tx, Document, Document], Awaitable[bool]]


@dataclass(frozen=True)
class Idempotency:
    """Where a command stores its reply for its ``Idempotency-Key`` (see routes/deps.py)."""

    keys: IdempotencyKeys
    scope: str
    key: str


UNIQUE_RACE_ROUNDS = 3


async def run_transaction(outbox: Outbox, work: Callable[[Tx], Awaitable[T]]) -> T:
    """``outbox.transaction(work)``, tried again when two writers created one document.

    Write conflicts are retried (with jitter) by ``in_transaction``; a unique-index race
    (two first check-ins creating a session's queue counter) is not labelled transient,
    so it is retried here: the next round finds the winner's document.
    """
    for attempt in range(1, UNIQUE_RACE_ROUNDS + 1):
        try:
            return await outbox.transaction(work)
        except DuplicateKeyError:
            if attempt == UNIQUE_RACE_ROUNDS:
                raise
            await asyncio.sleep(random.uniform(0, 0.02 * attempt))  # noqa: S311 - jitter
    raise AssertionError("unreachable")


def schedule_cancelled() -> Conflict:
    return Conflict(
        "schedule_cancelled", "this session has been cancelled", detail_zh="该医生本次出诊已停诊"
    )


def sold_out(schedule: Document) -> Conflict:
    return Conflict(
        "slot_sold_out",
        "no slot is left in this session",
        detail_zh="号源已约满，可加入候补",
        extra={"schedule_id": schedule["_id"], "waitlist": True},
    )


def slot_taken() -> Conflict:
    return Conflict("slot_taken", "this numbered slot is taken", detail_zh="该号源已被预约")


async def check_limits(
    db: Database,
    patient_id: str,
    schedule: Document,
    policy: BookingPolicy,
    now: datetime,
    session: Session,
    *,
    excluding: str | None = None,
) -> None:
    """The patient's booking limits, counting every booking but ``excluding``."""
    base: dict[str, Any] = {"patient_id": patient_id}
    if excluding is not None:
        base["_id"] = {"$ne": excluding}
    active = {**base, "active": True}
    appointments = db[APPOINTMENTS]
    booking_rules.check_patient_limits(
        policy,
        active_bookings=await appointments.count_documents(active, session=session),
        same_department_day=await appointments.count_documents(
            {
                **active,
                "department_id": schedule["department_id"],
                "clinic_date": schedule["clinic_date"],
            },
            session=session,
        ),
        same_resource_session=await appointments.count_documents(
            {**active, "schedule_id": schedule["_id"]}, session=session
        ),
        real_name_day=await appointments.count_documents(
            {
                **base,
                "booked_on": booking_rules.clinic_date_of(now, policy.timezone).isoformat(),
                "rescheduled_from": {"$exists": False},  # a move is not a new booking
            },
            session=session,
        ),
    )


def account_of(principal: Principal, patient: Document) -> str:
    if principal.subject in patient.get("account_ids", []):
        return principal.subject
    return str((patient.get("account_ids") or [""])[0])


async def new_appointment(
    db: Database,
    catalog: Catalog,
    session: Session,
    *,
    appointment_id: str,
    principal: Principal,
    patient: Document,
    schedule: Document,
    slot: Document,
    channel: Channel,
    policy: BookingPolicy,
    now: datetime,
    referral_id: str | None = None,
    account_id: str | None = None,
    booking_request_id: str | None = None,
    revisit_request_id: str | None = None,
    **fields: Any,
) -> Document:
    """A booked appointment on ``slot`` (not yet inserted), shaped like ``Booking``'s."""
    resource = await db[RESOURCES].find_one({"_id": schedule["resource_id"]}, session=session) or {}
    department = await catalog.department(schedule["department_id"])
    facts = new_appointment_facts(
        patient=patient,
        schedule=schedule,
        slot=slot,
        department=department,
        resource=resource,
        channel=channel,
        account_id=account_id or account_of(principal, patient),
        referral_id=referral_id,
        booking_request_id=booking_request_id,
        revisit_request_id=revisit_request_id,
    )
    return {
        "_id": appointment_id,
        **facts,
        "title": resource.get("title"),
        "fee_cents": schedule["fee_cents"],
        "schedule_id": schedule["_id"],
        "slot_id": slot["_id"],
        "status": AppointmentStatus.BOOKED.value,
        "active": True,
        "booked_by": {"id": principal.subject, "role": principal.primary_role},
        "booked_on": booking_rules.clinic_date_of(now, policy.timezone).isoformat(),
        "created_at": now,
        "version": 1,
        **fields,
    }


def new_appointment_facts(
    *,
    patient: Document,
    schedule: Document,
    slot: Document,
    department: Document,
    resource: Document,
    channel: Channel,
    account_id: str,
    referral_id: str | None,
    booking_request_id: str | None = None,
    revisit_request_id: str | None = None,
) -> dict[str, Any]:
    """The stored facts of a new appointment: one per field of ``AppointmentFacts`` but
    its id (``views.FACT_FIELDS``), in that order; a fact without a source is a KeyError."""
    sources = {
        "patient_id": patient["_id"],
        "account_id": account_id,
        "department_name": department["name"],
        **{name: schedule[name] for name in SCHEDULE_FACTS},
        **{name: slot[name] for name in SLOT_FACTS},
        "channel": channel.value,
        "referral_id": referral_id,
        "preparation": resource.get("preparation"),
        "booking_request_id": booking_request_id,
        "revisit_request_id": revisit_request_id,
    }
    return {name: sources[name] for name in FACT_FIELDS}


async def remember(
    idempotency: Idempotency | None, status: int, view: dict[str, Any], session: Session
) -> None:
    """Store the reply under the caller's Idempotency-Key, in the change's transaction."""
    if idempotency is not None:
        await idempotency.keys.complete(
            idempotency.scope, idempotency.key, StoredResponse(status, view), session=session
        )
