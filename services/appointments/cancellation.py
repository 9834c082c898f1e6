"""Cancelling a booking: cut-off rules, late-cancellation offences, the slot freed again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.appointments.admission import AdmissionGate
from services.appointments.booking_common import SlotFreedHook
from services.appointments.domain import booking_rules
from services.appointments.domain.models import AppointmentStatus
from services.appointments.events import AppointmentCancelled
from services.appointments.policies import Policies
from services.appointments.queries import AppointmentQueries
from services.appointments.records import PatientRecords
from services.appointments.store import APPOINTMENTS, SLOTS
from services.appointments.views import appointment_facts, appointment_view
from shared.audit import AuditLog
from shared.events import make_event
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.principal import Principal
from shared.problems import Conflict


class Cancellation:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        gate: AdmissionGate,
        policies: Policies,
        records: PatientRecords,
        queries: AppointmentQueries,
        audit: AuditLog,
        on_slot_freed: SlotFreedHook,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.gate = gate
        self.policies = policies
        self.records = records
        self.queries = queries
        self.audit = audit
        # the waitlist takes a freed slot first (it holds it for an offer)
        self.on_slot_freed = on_slot_freed

    async def cancel(
        self,
        principal: Principal,
        appointment_id: str,
        *,
        reason: str,
        access_reason: str | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Cancel a booking; ``reason`` says why it is cancelled (in the event), and
        ``access_reason`` why staff act for the patient (in the audit record)."""
        now = now or datetime.now(UTC)
        doc = await self.queries.get_document(principal, appointment_id)
        if doc["status"] != AppointmentStatus.BOOKED.value:
            raise Conflict(
                "appointment_not_cancellable",
                f"an appointment that is {doc['status']} cannot be cancelled",
                detail_zh="该预约当前状态不可取消",
                extra={"current_status": doc["status"]},
            )
        policy = await self.policies.for_org(doc["org_id"])
        by_staff = principal.is_staff
        booking_rules.check_cancellable(
            policy, now=now, starts_at=doc["starts_at"], by_staff=by_staff
        )
        late = not by_staff and booking_rules.is_late_cancellation(
            policy, now=now, starts_at=doc["starts_at"]
        )

        async def work(tx: Tx) -> dict[str, Any]:
            return await self.cancel_in(
                tx,
                principal,
                doc,
                reason=reason,
                late=late,
                timezone=policy.timezone,
                access_reason=access_reason,
                now=now,
            )

        return await self.outbox.transaction(work)

    async def cancel_in(
        self,
        tx: Tx,
        principal: Principal,
        doc: Document,
        *,
        reason: str,
        late: bool,
        timezone: str,
        access_reason: str | None = None,
        now: datetime,
    ) -> dict[str, Any]:
        """Inside ``tx``: cancel the booked appointment ``doc`` (its checks already made),
        free its slot, record a ``late`` cancellation's offence, say so in an event."""
        appointment_id = doc["_id"]
        by_staff = principal.is_staff
        updated = await self.db[APPOINTMENTS].find_one_and_update(
            {"_id": appointment_id, "status": AppointmentStatus.BOOKED.value},
            {
                "$set": {
                    "status": AppointmentStatus.CANCELLED.value,
                    "active": False,
                    "cancelled_at": now,
                    "cancel_reason": reason,
                    "late_cancel": late,
                    "cancelled_by": {"id": principal.subject, "role": principal.primary_role},
                },
                "$inc": {"version": 1},
            },
            session=tx.session,
            return_document=True,
        )
        if updated is None:
            raise Conflict("appointment_not_cancellable", "the appointment just changed")
        slot = await self.db[SLOTS].find_one_and_update(
            {"_id": doc["slot_id"], "appointment_id": appointment_id},
            {"$set": {"status": "open"}, "$unset": {"appointment_id": ""}},
            session=tx.session,
        )
        offered = slot is not None and await self.on_slot_freed(tx, doc, slot)
        # a slot offered to the waitlist stays out of Redis; otherwise it is bookable again
        pool = slot["pool"] if slot and not slot.get("extra") and not offered else None
        if late:
            await self.records.add_offence(
                doc["patient_id"], "late_cancels", now, tx.session, org_id=doc["org_id"], tx=tx
            )
        tx.emit(
            make_event(
                AppointmentCancelled(
                    **appointment_facts(doc),
                    reason=reason,
                    late=late,
                    cancelled_by_role=principal.primary_role,
                ),
                source="appointments",
                subject=doc["patient_id"],
            )
        )
        if by_staff:
            await self.audit.record(
                principal,
                "appointment.cancel",
                patient_id=doc["patient_id"],
                resource=f"appointment:{appointment_id}",
                reason=access_reason or reason,
                details={"cancel_reason": reason},
                session=tx.session,
            )
        tx.after_commit.append(
            lambda: self.gate.release(doc["schedule_id"], doc["patient_id"], pool, doc["slot_id"])
        )
        return appointment_view(updated, timezone)
