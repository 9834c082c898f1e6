"""Book and cancel: admission in Redis first, then the slot claimed in one Mongo transaction.

No slot is booked twice: a slot is claimed with a conditional update (``status: open``)
inside the booking's transaction, and a unique index allows one active appointment per
slot. Redis only decides quickly who may try.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema
from pymongo import ReturnDocument

from services.appointments.admission import AdmissionGate, Outcome
from services.appointments.attempt_limits import BookingAttempts
from services.appointments.booking_common import (
    Idempotency,
    check_limits,
    new_appointment,
    remember,
)
from services.appointments.domain import booking_rules, penalty_rules
from services.appointments.domain.models import Channel, Pool
from services.appointments.domain.policy import BookingPolicy
from services.appointments.events import AppointmentBooked
from services.appointments.patients import Patients
from services.appointments.policies import Policies
from services.appointments.records import PatientRecords
from services.appointments.schedules import Schedules
from services.appointments.store import APPOINTMENTS, SLOTS
from services.appointments.views import appointment_facts, appointment_view
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


def sold_out(schedule: Document) -> Conflict:
    return Conflict(
        "slot_sold_out",
        "no slot is left in this session",
        detail_zh="号源已约满，可加入候补",
        extra={"schedule_id": schedule["_id"], "waitlist": True},
    )


class Booking:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        gate: AdmissionGate,
        patients: Patients,
        schedules: Schedules,
        policies: Policies,
        records: PatientRecords,
        audit: AuditLog,
        attempts: BookingAttempts,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.gate = gate
        self.patients = patients
        self.schedules = schedules
        self.policies = policies
        self.records = records
        self.audit = audit
        self.attempts = attempts

    async def book(
        self,
        principal: Principal,
        request: BookRequest,
        *,
        idempotency: Idempotency | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        patient = await self.patients.get_for(principal, request.patient_id)
        await self.attempts.check(principal, patient)  # per national ID and account
        schedule = await self.schedules.get(request.schedule_id)
        if schedule["status"] != "published":
            raise Conflict(
                "schedule_cancelled",
                "this session has been cancelled",
                detail_zh="该医生本次出诊已停诊",
            )
        policy = await self.policies.for_org(schedule["org_id"])
        channel = channel_for(principal, request.channel)
        clinic_date = date.fromisoformat(schedule["clinic_date"])
        pools = [
            p.value
            for p in booking_rules.open_pools(
                policy,
                now=now,
                channel=channel,
                clinic_date=clinic_date,
                department_id=schedule["department_id"],
            )
        ]
        slot: Document | None = None
        if request.slot_id is not None:
            slot = await self.slot_of(schedule, request.slot_id)
            if slot["pool"] not in pools:
                raise Conflict(
                    "slot_not_in_pool",
                    "this numbered slot is reserved for others",
                    detail_zh="该号源为预留号源，当前渠道不可预约",
                )
            pools = [slot["pool"]]
        booking_rules.check_not_started(
            now=now, starts_at=slot["starts_at"] if slot else schedule["ends_at"]
        )
        wanted = slot["_id"] if slot else None
        admission = await self.gate.admit(schedule["_id"], patient["_id"], pools, wanted)
        if admission.outcome == Outcome.UNINITIALIZED:
            await self.schedules.sync_admission(schedule["_id"])
            admission = await self.gate.admit(schedule["_id"], patient["_id"], pools, wanted)
        if admission.outcome == Outcome.DUPLICATE:
            raise Conflict(
                "duplicate_booking",
                "already booked in this session",
                detail_zh="您已预约该医生同一时段的号源",
            )
        if admission.outcome != Outcome.ADMITTED:
            if wanted is not None:
                raise Conflict(
                    "slot_taken", "this numbered slot is taken", detail_zh="该号源已被预约"
                )
            raise sold_out(schedule)
        slot_id = admission.slot_id or ""

        async def work(tx: Tx) -> dict[str, Any]:
            return await self.claim(
                tx,
                principal,
                request,
                patient,
                schedule,
                policy,
                channel,
                slot_id,
                now,
                idempotency,
            )

        try:
            return await self.outbox.transaction(work)
        except NoSlotLeft:  # Redis was ahead of Mongo: that slot is not open after all
            await self.gate.release(schedule["_id"], patient["_id"], None, None)
            raise sold_out(schedule) from None
        except BaseException:
            await self.gate.release(schedule["_id"], patient["_id"], admission.pool, slot_id)
            raise

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
