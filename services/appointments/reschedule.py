"""Reschedule (改约): the new slot is secured before the old one is released.

The new slot is admitted in Redis first, then one Mongo transaction claims it, books the
new appointment, marks the old one ``rescheduled`` (conditionally on its status) and frees
the old slot, so the patient never ends up with both slots or with neither. The old slot
goes back to Redis after the commit (unless the waitlist took it); any failure returns
the new admission.

Redis guards one admission per patient and session. Moving within the same session, the
patient already holds that guard, so the new slot is admitted under a token of its own
(the patient id plus the appointment id), which also keeps two concurrent moves of one
appointment apart; the patient's own guard stays, as they keep a booking there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema
from pymongo import ReturnDocument
from redis.exceptions import RedisError

from services.appointments.admission import AdmissionGate, Outcome
from services.appointments.booking import Booking, NoSlotLeft, channel_for
from services.appointments.booking_common import (
    Idempotency,
    SlotFreedHook,
    check_limits,
    new_appointment,
    remember,
    run_transaction,
    schedule_cancelled,
    slot_taken,
    sold_out,
)
from services.appointments.catalog import Catalog
from services.appointments.domain import booking_rules, change_rules, penalty_rules
from services.appointments.domain.models import AppointmentStatus, Channel
from services.appointments.domain.policy import BookingPolicy
from services.appointments.events import AppointmentRescheduled
from services.appointments.patients import Patients
from services.appointments.policies import Policies
from services.appointments.queries import AppointmentQueries
from services.appointments.records import PatientRecords
from services.appointments.schedules import Schedules
from services.appointments.store import APPOINTMENTS, SLOTS
from services.appointments.views import appointment_facts, appointment_view
from shared.audit import AuditLog
from shared.events import make_event
from shared.ids import new_id
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.principal import Principal
from shared.problems import Conflict

log = structlog.get_logger(__name__)


class RescheduleRequest(BaseModel):
    schedule_id: str = Field(min_length=1, max_length=200)
    slot_id: str | None = Field(None, min_length=1, max_length=200)
    # the staff access reason: set by the route from shared.access_reason (query `reason` or
    # X-Access-Reason), never read from the body, so not in the request schema
    reason: SkipJsonSchema[str | None] = Field(None, max_length=200)


@dataclass(frozen=True)
class Hold:
    """The new slot admitted in Redis, under which guard token and from which pool."""

    schedule_id: str
    token: str
    pool: str | None
    slot_id: str


@dataclass
class Target:
    """Where the booking moves to, as checked before admission."""

    schedule: Document
    policy: BookingPolicy
    channel: Channel
    pools: list[str]
    slot: Document | None


@dataclass
class Freed:
    """What became of the old slot inside the transaction."""

    pool: str | None = None  # the pool to give it back to in Redis; None: keep it out


class Reschedule:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        gate: AdmissionGate,
        catalog: Catalog,
        patients: Patients,
        schedules: Schedules,
        policies: Policies,
        records: PatientRecords,
        queries: AppointmentQueries,
        booking: Booking,
        audit: AuditLog,
        on_slot_freed: SlotFreedHook,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.gate = gate
        self.catalog = catalog
        self.patients = patients
        self.schedules = schedules
        self.policies = policies
        self.records = records
        self.queries = queries
        self.booking = booking
        self.audit = audit
        self.on_slot_freed = on_slot_freed  # the waitlist takes a freed slot first

    async def reschedule(
        self,
        principal: Principal,
        appointment_id: str,
        request: RescheduleRequest,
        *,
        idempotency: Idempotency | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        old = await self.queries.get_document(principal, appointment_id)
        old_policy = await self.policies.for_org(old["org_id"])
        change_rules.check_reschedulable(
            old_policy,
            status=old["status"],
            now=now,
            starts_at=old["starts_at"],
            by_staff=principal.is_staff,
        )
        change_rules.check_other_slot(old["slot_id"], request.slot_id)
        patient = await self.patients.get_for(principal, old["patient_id"])
        target = await self._target(principal, request, now)
        hold = await self._admit(old, target, request.slot_id)
        freed = Freed()

        async def work(tx: Tx) -> dict[str, Any]:
            return await self._move(
                tx, principal, request, old, patient, target, hold, freed, now, idempotency
            )

        try:
            view = await run_transaction(self.outbox, work)
        except NoSlotLeft:  # Redis was ahead of Mongo: that slot is not open after all
            await self.gate.release(hold.schedule_id, hold.token, None, None)
            raise (slot_taken() if request.slot_id else sold_out(target.schedule)) from None
        except BaseException:
            await self.gate.release(hold.schedule_id, hold.token, hold.pool, hold.slot_id)
            raise
        await self._give_back(old, hold, freed)
        return view

    async def _target(
        self, principal: Principal, request: RescheduleRequest, now: datetime
    ) -> Target:
        """The new session and slot, under the same rules as booking it."""
        schedule = await self.schedules.get(request.schedule_id)
        if schedule["status"] != "published":
            raise schedule_cancelled()
        policy = await self.policies.for_org(schedule["org_id"])
        channel = channel_for(principal, None)
        pools = booking_rules.open_pool_names(policy, schedule, channel, now)
        slot: Document | None = None
        if request.slot_id is not None:
            slot = await self.booking.slot_of(schedule, request.slot_id)
            if slot["pool"] not in pools or slot.get("extra"):
                raise Conflict(
                    "slot_not_in_pool",
                    "this numbered slot is reserved for others",
                    detail_zh="该号源为预留号源，当前渠道不可预约",
                )
            pools = [slot["pool"]]
        booking_rules.check_not_started(
            now=now, starts_at=slot["starts_at"] if slot else schedule["ends_at"]
        )
        return Target(schedule, policy, channel, pools, slot)

    async def _admit(self, old: Document, target: Target, wanted: str | None) -> Hold:
        gate = self.gate
        sid = target.schedule["_id"]
        same_session = sid == old["schedule_id"]
        token = f"{old['patient_id']}:move:{old['_id']}" if same_session else old["patient_id"]
        admission = await gate.admit(sid, token, target.pools, wanted)
        if admission.outcome == Outcome.UNINITIALIZED:
            await self.schedules.sync_admission(sid)
            admission = await gate.admit(sid, token, target.pools, wanted)
        if admission.outcome == Outcome.DUPLICATE:
            if same_session:
                raise Conflict(
                    "reschedule_in_progress",
                    "this appointment is being rescheduled already",
                    detail_zh="该预约正在改约中，请稍后再试",
                )
            raise Conflict(
                "duplicate_booking",
                "already booked in this session",
                detail_zh="您已预约该医生同一时段的号源",
            )
        if admission.outcome != Outcome.ADMITTED:
            raise slot_taken() if wanted is not None else sold_out(target.schedule)
        return Hold(sid, token, admission.pool, admission.slot_id or "")

    async def _move(
        self,
        tx: Tx,
        principal: Principal,
        request: RescheduleRequest,
        old: Document,
        patient: Document,
        target: Target,
        hold: Hold,
        freed: Freed,
        now: datetime,
        idempotency: Idempotency | None,
    ) -> dict[str, Any]:
        db, session = self.db, tx.session
        policy, schedule = target.policy, target.schedule
        record = await self.records.lock(patient["_id"], session)
        banned_until = self.records.banned_until(record, policy, now, schedule["org_id"])
        penalty_rules.check_not_banned(banned_until, now, policy.timezone)
        await check_limits(db, patient["_id"], schedule, policy, now, session, excluding=old["_id"])
        appointment_id = new_id()
        claimed = await db[SLOTS].find_one_and_update(
            {"_id": hold.slot_id, "schedule_id": schedule["_id"], "status": "open"},
            {"$set": {"status": "booked", "appointment_id": appointment_id}},
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if claimed is None:
            raise NoSlotLeft
        # the old booking goes inactive before the new one is inserted: one active per session
        moved = await db[APPOINTMENTS].find_one_and_update(
            {"_id": old["_id"], "status": AppointmentStatus.BOOKED.value},
            {
                "$set": {
                    "status": AppointmentStatus.RESCHEDULED.value,
                    "active": False,
                    "rescheduled_to": appointment_id,
                    "rescheduled_at": now,
                    "rescheduled_by": {"id": principal.subject, "role": principal.primary_role},
                    "reschedule_reason": request.reason,
                },
                "$inc": {"version": 1},
            },
            session=session,
        )
        if moved is None:
            raise Conflict(
                "appointment_not_reschedulable",
                "the appointment just changed",
                detail_zh="该预约状态已变更，请刷新后重试",
            )
        appointment = await new_appointment(
            self.db,
            self.catalog,
            session,
            appointment_id=appointment_id,
            principal=principal,
            patient=patient,
            schedule=schedule,
            slot=claimed,
            channel=target.channel,
            policy=policy,
            now=now,
            referral_id=old.get("referral_id"),
            account_id=old.get("account_id"),
            booking_request_id=old.get("booking_request_id"),
            revisit_request_id=old.get("revisit_request_id"),
            rescheduled_from=old["_id"],
        )
        await db[APPOINTMENTS].insert_one(appointment, session=session)
        await self._free_old_slot(tx, old, freed)
        tx.emit(
            make_event(
                AppointmentRescheduled(
                    **appointment_facts(appointment),
                    previous_appointment_id=old["_id"],
                    previous_starts_at=old["starts_at"],
                ),
                source="appointments",
                subject=patient["_id"],
            )
        )
        if principal.is_staff:
            await self.audit.record(
                principal,
                "appointment.reschedule",
                patient_id=patient["_id"],
                resource=f"appointment:{old['_id']}",
                reason=request.reason,
                details={"rescheduled_to": appointment_id, "slot_id": claimed["_id"]},
                session=session,
            )
        view = {**appointment_view(appointment, policy.timezone), "rescheduled_from": old["_id"]}
        await remember(idempotency, 200, view, session)
        return view

    async def _free_old_slot(self, tx: Tx, old: Document, freed: Freed) -> None:
        """Open the old slot again; the waitlist may take it first, as on a cancellation."""
        slot = await self.db[SLOTS].find_one_and_update(
            {"_id": old["slot_id"], "appointment_id": old["_id"]},
            {"$set": {"status": "open"}, "$unset": {"appointment_id": ""}},
            session=tx.session,
        )
        offered = slot is not None and await self.on_slot_freed(tx, old, slot)
        freed.pool = slot["pool"] if slot and not slot.get("extra") and not offered else None

    async def _give_back(self, old: Document, hold: Hold, freed: Freed) -> None:
        """After the commit: the old session's guard and (maybe) the old slot back to Redis.

        Moving within one session this drops only the move's own token; the patient's
        guard stays. A Redis failure here leaves Redis behind Mongo (a slot not offered),
        never ahead of it, until the next rebuild from Mongo (``sync_admission``) repairs it.
        """
        try:
            await self.gate.release(old["schedule_id"], hold.token, freed.pool, old["slot_id"])
        except RedisError:
            log.warning(
                "appointments.reschedule_release_failed",
                schedule_id=old["schedule_id"],
                slot_id=old["slot_id"],
            )
