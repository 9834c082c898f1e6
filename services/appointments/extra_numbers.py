"""Extra numbers (加号): staff book a patient beyond a session's capacity, with a reason.

An extra number is a new slot (``extra: True``, number = the session's highest + 1, seen in
the session's last slot window) booked for the patient in the same transaction. It never
enters Redis admission and is not returned to it on cancellation. Patient limits and bans
still apply; the booking looks like any other and emits ``appointment.booked``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from pymongo import DESCENDING

from services.appointments.booking_common import (
    Idempotency,
    check_limits,
    new_appointment,
    remember,
    run_transaction,
    schedule_cancelled,
)
from services.appointments.catalog import Catalog
from services.appointments.domain import change_rules, penalty_rules
from services.appointments.domain.models import Channel, SlotStatus
from services.appointments.domain.policy import BookingPolicy
from services.appointments.events import AppointmentBooked
from services.appointments.patients import Patients
from services.appointments.policies import Policies
from services.appointments.records import PatientRecords
from services.appointments.schedules import Schedules
from services.appointments.store import APPOINTMENTS, COUNTERS, SLOTS
from services.appointments.views import appointment_facts, appointment_view
from shared.audit import AuditLog
from shared.events import make_event
from shared.ids import new_id
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.principal import Principal, Role
from shared.problems import Forbidden
from shared.scoping import ensure_org

EXTRA_NUMBER_ROLES = (Role.DOCTOR, Role.NURSE, Role.AGENT, Role.ADMIN)


class ExtraNumberRequest(BaseModel):
    patient_id: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=200)


def extra_lock_id(schedule_id: str) -> str:
    return f"extra:{schedule_id}"


class ExtraNumbers:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        catalog: Catalog,
        patients: Patients,
        schedules: Schedules,
        policies: Policies,
        records: PatientRecords,
        audit: AuditLog,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.catalog = catalog
        self.patients = patients
        self.schedules = schedules
        self.policies = policies
        self.records = records
        self.audit = audit

    async def add(
        self,
        principal: Principal,
        schedule_id: str,
        request: ExtraNumberRequest,
        *,
        idempotency: Idempotency | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        if not principal.has_any(*EXTRA_NUMBER_ROLES):
            raise Forbidden(
                "forbidden_role",
                "extra numbers are added by clinic staff",
                detail_zh="加号需由医生、护士或客服办理",
            )
        schedule = await self.schedules.get(schedule_id)
        ensure_org(principal, schedule["org_id"])  # numbers in one's own organization only
        if schedule["status"] != "published":
            raise schedule_cancelled()
        change_rules.check_extra_number_allowed(now=now, session_ends_at=schedule["ends_at"])
        patient = await self.patients.get_for(
            principal, request.patient_id, at_org=schedule["org_id"]
        )
        policy = await self.policies.for_org(schedule["org_id"])
        channel = change_rules.extra_number_channel(by_nurse=principal.has_any(Role.NURSE))

        async def work(tx: Tx) -> dict[str, Any]:
            return await self._book(
                tx, principal, request, patient, schedule, policy, channel, now, idempotency
            )

        return await run_transaction(self.outbox, work)

    async def _book(
        self,
        tx: Tx,
        principal: Principal,
        request: ExtraNumberRequest,
        patient: Document,
        schedule: Document,
        policy: BookingPolicy,
        channel: Channel,
        now: datetime,
        idempotency: Idempotency | None,
    ) -> dict[str, Any]:
        db, session = self.db, tx.session
        record = await self.records.lock(patient["_id"], session)
        banned_until = self.records.banned_until(record, policy, now, schedule["org_id"])
        penalty_rules.check_not_banned(banned_until, now, policy.timezone)
        await check_limits(db, patient["_id"], schedule, policy, now, session)
        # two extra numbers for one session at once conflict here, and one is retried
        await db[COUNTERS].update_one(
            {"_id": extra_lock_id(schedule["_id"])},
            {"$inc": {"seq": 1}},
            upsert=True,
            session=session,
        )
        last = await db[SLOTS].find_one(
            {"schedule_id": schedule["_id"]}, sort=[("number", DESCENDING)], session=session
        )
        starts_at, ends_at = change_rules.extra_slot_window(
            (last["starts_at"], last["ends_at"]) if last else None, schedule["ends_at"]
        )
        number = (int(last["number"]) if last else int(schedule["slot_count"])) + 1
        appointment_id = new_id()
        slot = {
            "_id": f"{schedule['_id']}.{number}",
            "schedule_id": schedule["_id"],
            "number": number,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "pool": channel.value,
            "status": SlotStatus.BOOKED.value,
            "extra": True,
            "appointment_id": appointment_id,
            "added_by": {"id": principal.subject, "role": principal.primary_role},
            "added_at": now,
            "added_reason": request.reason,
        }
        await db[SLOTS].insert_one(slot, session=session)
        appointment = await new_appointment(
            self.db,
            self.catalog,
            session,
            appointment_id=appointment_id,
            principal=principal,
            patient=patient,
            schedule=schedule,
            slot=slot,
            channel=channel,
            policy=policy,
            now=now,
            extra=True,
            extra_reason=request.reason,
        )
        await db[APPOINTMENTS].insert_one(appointment, session=session)
        tx.emit(
            make_event(
                AppointmentBooked(
                    **appointment_facts(appointment), booked_by_role=principal.primary_role
                ),
                source="appointments",
                subject=patient["_id"],
            )
        )
        await self.audit.record(
            principal,
            "appointment.extra_number",
            patient_id=patient["_id"],
            resource=f"appointment:{appointment_id}",
            reason=request.reason,
            details={"schedule_id": schedule["_id"], "number": number},
            session=session,
        )
        view = {**appointment_view(appointment, policy.timezone), "extra": True}
        await remember(idempotency, 201, view, session)
        return view
