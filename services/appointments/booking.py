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
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema
from pymongo import ReturnDocument
from redis.exceptions import RedisError

from services.appointments.admission import Admission, AdmissionGate, LeaseTerms, Outcome
from services.appointments.admission_cache import AdmissionCache
from services.appointments.admission_leases import AdmissionLeases
from services.appointments.attempt_limits import BookingAttempts
from services.appointments.booking_common import (
    Idempotency,
    check_limits,
    new_appointment,
    remember,
    slot_taken,
    sold_out,
)
from services.appointments.domain import booking_rules, penalty_rules
from services.appointments.domain.models import Channel, Pool
from services.appointments.domain.policy import BookingPolicy
from services.appointments.events import AppointmentBooked
from services.appointments.policies import Policies
from services.appointments.records import PatientRecords
from services.appointments.schedules import Schedules
from services.appointments.settings import AdmissionSettings
from services.appointments.store import APPOINTMENTS, PATIENTS, SLOTS
from services.appointments.views import appointment_facts, appointment_view
from services.appointments.waiting_room import Ticket, WaitingRoom
from shared.audit import AuditLog
from shared.events import make_event
from shared.ids import new_id
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.principal import Principal, Role
from shared.problems import Conflict, Forbidden


class BookRequest(BaseModel):
    patient_id: str = Field(min_length=1, max_length=64)
    schedule_id: str = Field(min_length=1, max_length=200)
    slot_id: str | None = Field(None, max_length=200)
    channel: Channel | None = None
    referral_id: str | None = Field(None, max_length=64)
    # the staff access reason: set by the route from shared.access_reason (query `reason` or
    # X-Access-Reason), never read from the body, so not in the request schema
    reason: SkipJsonSchema[str | None] = Field(None, max_length=200)


class NoSlotLeft(Exception):
    """Admitted, but Mongo found no open slot in the pool (Redis was ahead of the truth)."""


def channel_for(principal: Principal, requested: Channel | None) -> Channel:
    """Patients book through the app; hotline agents and on-site nurses through their pools."""
    if not principal.is_staff and Role.SERVICE not in principal.roles:
        if requested not in (None, Channel.APP):
            raise Forbidden("channel_not_allowed", "patients book through the app channel")
        return Channel.APP
    if requested is not None:
        return requested
    return Channel.ONSITE if principal.has_any(Role.NURSE) else Channel.HOTLINE


@dataclass(frozen=True)
class Attempt:
    """A booking attempt that passed every check Redis can answer: ready to be admitted."""

    principal: Principal
    request: BookRequest
    patient: Document  # the cached projection: _id, account_ids, national_id_hash
    schedule: Document
    policy: BookingPolicy
    channel: Channel
    pools: list[str]
    wanted: str | None


class Booking:
    """A booking: checks from the Redis caches, admission (with a lease, or a ticket in the
    waiting room), then the slot claimed in one Mongo transaction, then the lease settled."""

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        gate: AdmissionGate,
        cache: AdmissionCache,
        leases: AdmissionLeases,
        schedules: Schedules,
        policies: Policies,
        records: PatientRecords,
        audit: AuditLog,
        attempts: BookingAttempts,
        settings: AdmissionSettings,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.gate = gate
        self.cache = cache
        self.leases = leases
        self.schedules = schedules
        self.policies = policies
        self.records = records
        self.audit = audit
        self.attempts = attempts
        self.settings = settings
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
        attempt = await self.check(principal, request, now, idempotency)
        admission = await self.admit(attempt, idempotency, serving_ticket=False)
        if admission.outcome is Outcome.BUSY and self.waiting_room is not None:
            return await self.waiting_room.enqueue(
                principal=principal,
                request=request.model_dump_json(),
                schedule_id=attempt.schedule["_id"],
                patient_id=attempt.patient["_id"],
                pools=attempt.pools,
                slot_id=attempt.wanted,
                lane=lane,
            )
        return await self.commit(attempt, admission, idempotency, now)

    async def serve_ticket(self, principal: Principal, request_json: str) -> dict[str, Any] | None:
        """A waiting-room ticket's turn: the booking's view, or None to wait on (a problem
        raised is the ticket's answer). Every check runs again: time has passed."""
        request = BookRequest.model_validate_json(request_json)
        now = datetime.now(UTC)
        attempt = await self.check(principal, request, now)
        admission = await self.admit(attempt, None, serving_ticket=True)
        if admission.outcome is Outcome.BUSY:
            return None
        return await self.commit(attempt, admission, None, now)

    async def check(
        self,
        principal: Principal,
        request: BookRequest,
        now: datetime,
        idempotency: Idempotency | None = None,
    ) -> Attempt:
        """Every refusal Redis can answer: not the caller's patient, too many attempts, a
        cancelled or unreleased session, a slot of another pool or in the past, a ban."""
        patient, cached, version = await self.cache.lookup(request.patient_id, request.schedule_id)
        if not (principal.is_staff or patient.managed_by(principal.subject)):
            raise Forbidden(
                "forbidden_patient",
                "you may not act for this patient",
                detail_zh="无权操作该就诊人",
            )
        ref = f"{idempotency.scope}:{idempotency.key}" if idempotency else ""
        await self.attempts.check(principal, patient.doc, ref)  # per national ID and account
        schedule = cached.doc
        if schedule["status"] != "published":
            raise Conflict(
                "schedule_cancelled",
                "this session has been cancelled",
                detail_zh="该医生本次出诊已停诊",
            )
        policy = await self.policies.for_org(schedule["org_id"], version=version)
        channel = channel_for(principal, request.channel)
        pools = [
            p.value
            for p in booking_rules.open_pools(
                policy,
                now=now,
                channel=channel,
                clinic_date=date.fromisoformat(schedule["clinic_date"]),
                department_id=schedule["department_id"],
            )
        ]
        starts_at = schedule["ends_at"]
        if request.slot_id is not None:
            slot = cached.slots.get(request.slot_id) or await self.slot_of(
                schedule, request.slot_id
            )
            if slot["pool"] not in pools:
                raise Conflict(
                    "slot_not_in_pool",
                    "this numbered slot is reserved for others",
                    detail_zh="该号源为预留号源，当前渠道不可预约",
                )
            pools, starts_at = [slot["pool"]], slot["starts_at"]
        booking_rules.check_not_started(now=now, starts_at=starts_at)
        banned_until = self.records.banned_until(patient.record, policy, now, schedule["org_id"])
        penalty_rules.check_not_banned(banned_until, now, policy.timezone)
        return Attempt(
            principal, request, patient.doc, schedule, policy, channel, pools, request.slot_id
        )

    async def admit(
        self, attempt: Attempt, idempotency: Idempotency | None, *, serving_ticket: bool
    ) -> Admission:
        """Admission for the attempt, taking over its own earlier lease after a crash."""
        sid, pid = attempt.schedule["_id"], attempt.patient["_id"]
        terms = LeaseTerms(
            int(self.settings.lease_seconds * 1000),
            self.leases.owner,
            f"{idempotency.scope}:{idempotency.key}" if idempotency else "",
        )
        capacity = 0 if self.waiting_room is None else self.settings.waiting_room_capacity

        async def once() -> Admission:
            args = (sid, pid, attempt.pools, attempt.wanted)
            admission = await self.gate.admit(
                *args, lease=terms, capacity=capacity, serving_ticket=serving_ticket
            )
            if admission.outcome is Outcome.UNINITIALIZED:
                await self.schedules.sync_admission(sid)
                admission = await self.gate.admit(
                    *args, lease=terms, capacity=capacity, serving_ticket=serving_ticket
                )
            return admission

        admission = await once()
        if admission.outcome is Outcome.LEASED and admission.lease is not None:
            held = admission.lease
            if terms.idempotency and held.idempotency == terms.idempotency:
                taken = await self.leases.take_over(sid, pid, held, terms)
                if taken is not None:  # a retry of this very request: go on with its slot
                    return Admission(Outcome.ADMITTED, taken.pool, taken.slot_id, lease=taken)
            elif await self.leases.reconcile_if_dead(sid, pid, held):
                admission = await once()
        if admission.outcome is Outcome.LEASED:
            raise Conflict(
                "booking_in_progress",
                "a booking for this patient in this session is still being made",
                detail_zh="该就诊人的预约正在处理中，请稍后查看",
                headers={"Retry-After": "2"},
            )
        if admission.outcome is Outcome.DUPLICATE:
            raise Conflict(
                "duplicate_booking",
                "already booked in this session",
                detail_zh="您已预约该医生同一时段的号源",
            )
        if admission.outcome is Outcome.SOLD_OUT:
            if attempt.wanted is not None:
                raise slot_taken()
            raise sold_out(attempt.schedule)
        return admission

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
            if not attempt.principal.is_staff:  # the account may have let the patient go
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
        slot = await self.db[SLOTS].find_one({"_id": slot_id, "schedule_id": schedule["_id"]})
        if slot is None:
            raise Conflict("slot_not_found", "no such slot in this session")
        if slot["status"] != "open":
            raise Conflict("slot_taken", "this numbered slot is taken", detail_zh="该号源已被预约")
        return slot

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
    ) -> dict[str, Any]:
        """Inside ``tx``: check bans and limits, claim the open slot, create the booking."""
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
        )
        await self.db[APPOINTMENTS].insert_one(appointment, session=session)
        tx.emit(
            make_event(
                AppointmentBooked(
                    **appointment_facts(appointment), booked_by_role=principal.primary_role
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


__all__ = ["BookRequest", "Booking", "Idempotency", "Pool"]
