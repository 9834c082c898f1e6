"""Book: checks and admission in Redis first, then the slot claimed in one Mongo transaction.

No slot is booked twice: a slot is claimed with a conditional update (``status: open``)
inside the booking's transaction, and a unique index allows one active appointment per
slot. Redis decides quickly who may try: every refusal it can answer (sold out, not yet
released, banned, too many attempts, not the caller's patient) is answered from Redis
alone (:mod:`services.appointments.admission_cache`), and Mongo sees only admitted
requests. While admission is saturated, a request waits in the waiting room
(:mod:`services.appointments.waiting_room`); docs/adr/0004.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument
from redis.exceptions import RedisError

from services.appointments.admission import Admission, Outcome
from services.appointments.booking_admission import (
    Attempt,
    BookingAdmission,
    BookRequest,
    channel_for,
)
from services.appointments.booking_common import (
    Idempotency,
    check_limits,
    new_appointment,
    remember,
    sold_out,
)
from services.appointments.domain import penalty_rules
from services.appointments.domain.models import Channel, Pool
from services.appointments.domain.policy import BookingPolicy
from services.appointments.events import AppointmentBooked
from services.appointments.records import PatientRecords
from services.appointments.schedules import Schedules
from services.appointments.store import APPOINTMENTS, PATIENTS, SLOTS
from services.appointments.views import appointment_facts, appointment_view
from services.appointments.waiting_room import Ticket, WaitingRoom
from shared.audit import AuditLog
from shared.events import make_event
from shared.idempotency import StoredResponse
from shared.ids import new_id
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.principal import Principal, Role
from shared.problems import Forbidden


class NoSlotLeft(Exception):
    """Admitted, but Mongo found no open slot in the pool (Redis was ahead of the truth)."""


class Booking:
    """A booking: checks from the Redis caches and admission (with a lease, or a ticket in
    the waiting room; :mod:`services.appointments.booking_admission`), then the slot
    claimed in one Mongo transaction, then the lease settled."""

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        admission: BookingAdmission,
        schedules: Schedules,
        records: PatientRecords,
        audit: AuditLog,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.admission = admission
        self.gate = admission.gate
        self.schedules = schedules
        self.records = records
        self.audit = audit
        self.waiting_room: WaitingRoom | None = None  # set by the composition root

    async def book(
        self,
        principal: Principal,
        request: BookRequest,
        *,
        idempotency: Idempotency | None = None,
        now: datetime | None = None,
        lane: str = "",
    ) -> dict[str, Any] | Ticket:
        """The booking's view, or a waiting-room ticket while admission is saturated."""
        now = now or datetime.now(UTC)
        ref = f"{idempotency.scope}:{idempotency.key}" if idempotency else ""
        attempt = await self.admission.check(principal, request, now, ref)
        admission = await self.admission.admit(attempt, serving_ticket=False)
        if admission.outcome is Outcome.DUPLICATE and admission.existing is not None:
            # this very request booked before its answer was lost (a crash, a ticket)
            view = appointment_view(admission.existing, attempt.policy.timezone)
            if idempotency is not None:
                stored = StoredResponse(201, view)
                await idempotency.keys.complete(idempotency.scope, idempotency.key, stored)
            return view
        if admission.outcome is Outcome.BUSY and self.waiting_room is not None:
            return await self.waiting_room.enqueue(
                principal=principal,
                request=request.model_dump_json(),
                schedule_id=attempt.schedule["_id"],
                patient_id=attempt.patient["_id"],
                pools=attempt.pools,
                slot_id=attempt.wanted,
                lane=lane,
                request_ref=ref,
            )
        return await self.commit(attempt, admission, idempotency, now)

    async def serve_ticket(
        self, principal: Principal, request_json: str, ref: str = ""
    ) -> dict[str, Any] | None:
        """A waiting-room ticket's turn: the booking's view, or None to wait on (a problem
        raised is the ticket's answer). Every check runs again: time has passed."""
        request = BookRequest.model_validate_json(request_json)
        now = datetime.now(UTC)
        attempt = await self.admission.check(principal, request, now, ref)
        admission = await self.admission.admit(attempt, serving_ticket=True)
        if admission.outcome is Outcome.BUSY:
            return None
        if admission.outcome is Outcome.DUPLICATE and admission.existing is not None:
            return appointment_view(admission.existing, attempt.policy.timezone)
        return await self.commit(attempt, admission, None, now)

    async def commit(
        self,
        attempt: Attempt,
        admission: Admission,
        idempotency: Idempotency | None,
        now: datetime,
    ) -> dict[str, Any]:
        """Claim the admitted slot in Mongo; settle the lease, or release it on failure."""
        sid, pid = attempt.schedule["_id"], attempt.patient["_id"]
        slot_id = admission.slot_id or ""

        async def work(tx: Tx) -> dict[str, Any]:
            principal = attempt.principal
            if not (principal.is_staff or principal.has_any(Role.SERVICE)):
                # the account may have let the patient go meanwhile
                managed = {"_id": pid, "account_ids": attempt.principal.subject}
                if await self.db[PATIENTS].count_documents(managed, session=tx.session) == 0:
                    raise Forbidden("forbidden_patient", "you may not act for this patient")
            return await self.claim(
                tx,
                attempt.principal,
                attempt.request,
                attempt.patient,
                attempt.schedule,
                attempt.policy,
                attempt.channel,
                slot_id,
                now,
                idempotency,
                request_ref=attempt.ref,
            )

        try:
            view = await self.outbox.transaction(work)
        except NoSlotLeft:  # Redis was ahead of Mongo: that slot is not open after all
            await self.gate.release(sid, pid, None, None)
            raise sold_out(attempt.schedule) from None
        except BaseException:
            await self.gate.release(sid, pid, admission.pool, slot_id)
            raise
        with contextlib.suppress(RedisError):  # else the reconciler settles it from Mongo
            await self.gate.settle(sid, pid, admission.lease)
        return view

    async def slot_of(self, schedule: Document, slot_id: str) -> Document:
        return await self.admission.slot_of(schedule, slot_id)

    async def claim(
        self,
        tx: Tx,
        principal: Principal,
        request: BookRequest,
        patient: Document,
        schedule: Document,
        policy: BookingPolicy,
        channel: Channel,
        slot_id: str,
        now: datetime,
        idempotency: Idempotency | None,
        *,
        request_ref: str = "",
        account_id: str | None = None,
        booking_request_id: str | None = None,
        revisit_request_id: str | None = None,
    ) -> dict[str, Any]:
        """Inside ``tx``: check bans and limits, claim the open slot, create the booking.
        ``request_ref``: the Idempotency-Key it was made under, kept on the booking;
        ``account_id``: the account it is booked for (default: the caller's, else the
        patient's first); ``booking_request_id``: the referral saga's ask it answers;
        ``revisit_request_id``: the follow-up revisit ask it answers."""
        session = tx.session
        record = await self.records.lock(patient["_id"], session)
        banned_until = self.records.banned_until(record, policy, now, schedule["org_id"])
        penalty_rules.check_not_banned(banned_until, now, policy.timezone)
        await check_limits(self.db, patient["_id"], schedule, policy, now, session)
        appointment_id = new_id()
        claimed = await self.db[SLOTS].find_one_and_update(
            {"_id": slot_id, "schedule_id": schedule["_id"], "status": "open"},
            {"$set": {"status": "booked", "appointment_id": appointment_id}},
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if claimed is None:
            raise NoSlotLeft
        appointment = await new_appointment(
            self.db,
            self.schedules.catalog,
            session,
            appointment_id=appointment_id,
            principal=principal,
            patient=patient,
            schedule=schedule,
            slot=claimed,
            channel=channel,
            policy=policy,
            now=now,
            referral_id=request.referral_id,
            account_id=account_id,
            booking_request_id=booking_request_id,
            revisit_request_id=revisit_request_id,
            **({"request_ref": request_ref} if request_ref else {}),
            **({"escort": request.escort.model_dump()} if request.escort else {}),
        )
        await self.db[APPOINTMENTS].insert_one(appointment, session=session)
        tx.emit(
            make_event(
                AppointmentBooked(
                    **appointment_facts(appointment),
                    booked_by_role=principal.primary_role,
                    escort=appointment.get("escort"),
                ),
                source="appointments",
                subject=patient["_id"],
            )
        )
        if principal.is_staff:
            await self.audit.record(
                principal,
                "appointment.book",
                patient_id=patient["_id"],
                resource=f"appointment:{appointment_id}",
                reason=request.reason,
                session=session,
            )
        view = appointment_view(appointment, policy.timezone)
        await remember(idempotency, 201, view, session)
        return view


__all__ = ["BookRequest", "Booking", "Idempotency", "NoSlotLeft", "Pool", "channel_for"]
