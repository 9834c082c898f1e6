"""Check-in (签到) with a queue number: per session, in the order patients arrive.

The queue number comes from an atomic ``$inc`` on ``counters`` (``queue:<schedule id>``)
inside the check-in's transaction, so an aborted check-in uses no number and two
check-ins never share one: concurrent ones conflict on the counter and are retried
(``run_transaction``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument

from services.appointments.booking_common import Idempotency, remember, run_transaction
from services.appointments.domain import change_rules
from services.appointments.domain.models import AppointmentStatus
from services.appointments.events import AppointmentCheckedIn
from services.appointments.policies import Policies
from services.appointments.queries import AppointmentQueries
from services.appointments.store import APPOINTMENTS, COUNTERS
from services.appointments.views import appointment_facts, appointment_view
from shared.audit import AuditLog
from shared.events import make_event
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.principal import Principal, Role
from shared.problems import Conflict, Forbidden

# staff who check patients in: the clinic desk and the hotline; kiosks call as a service
CHECKIN_ROLES = (Role.NURSE, Role.AGENT, Role.SERVICE)


def queue_counter_id(schedule_id: str) -> str:
    return f"queue:{schedule_id}"


def owns(principal: Principal, doc: Document) -> bool:
    return doc["account_id"] == principal.subject or doc["patient_id"] in principal.patient_ids


class CheckIn:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        policies: Policies,
        queries: AppointmentQueries,
        audit: AuditLog,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.policies = policies
        self.queries = queries
        self.audit = audit

    async def check_in(
        self,
        principal: Principal,
        appointment_id: str,
        *,
        idempotency: Idempotency | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        doc = await self.queries.get_document(principal, appointment_id)
        by_owner = owns(principal, doc)
        if not by_owner and not principal.has_any(*CHECKIN_ROLES):
            raise Forbidden(
                "forbidden_role",
                "check-in is done by the patient, a nurse or a hotline agent",
                detail_zh="仅本人、护士或客服可办理签到",
            )
        change_rules.check_checkin_status(doc["status"])
        policy = await self.policies.for_org(doc["org_id"])
        change_rules.check_checkin(
            policy, now=now, starts_at=doc["starts_at"], ends_at=doc["ends_at"]
        )

        async def work(tx: Tx) -> dict[str, Any]:
            queue_number = await self._next_number(doc["schedule_id"], tx)
            updated = await self.db[APPOINTMENTS].find_one_and_update(
                {"_id": appointment_id, "status": AppointmentStatus.BOOKED.value},
                {
                    "$set": {
                        "status": AppointmentStatus.CHECKED_IN.value,
                        "queue_number": queue_number,
                        "checked_in_at": now,
                        "checked_in_by": {"id": principal.subject, "role": principal.primary_role},
                    },
                    "$inc": {"version": 1},
                },
                return_document=ReturnDocument.AFTER,
                session=tx.session,
            )
            if updated is None:  # changed since it was read: say what it is now
                current = await self.db[APPOINTMENTS].find_one(
                    {"_id": appointment_id}, session=tx.session
                )
                change_rules.check_checkin_status(current["status"] if current else "missing")
                raise Conflict("appointment_not_booked", "the appointment just changed")
            tx.emit(
                make_event(
                    AppointmentCheckedIn(**appointment_facts(updated), queue_number=queue_number),
                    source="appointments",
                    subject=updated["patient_id"],
                )
            )
            await self.audit.record(  # staff and services only; a patient is not audited
                principal,
                "appointment.check_in",
                patient_id=updated["patient_id"],
                resource=f"appointment:{appointment_id}",
                details={"queue_number": queue_number},
                session=tx.session,
            )
            view = {
                **appointment_view(updated, policy.timezone),
                "checked_in_at": now.isoformat(),
            }
            await remember(idempotency, 200, view, tx.session)
            return view

        return await run_transaction(self.outbox, work)

    async def _next_number(self, schedule_id: str, tx: Tx) -> int:
        counter = await self.db[COUNTERS].find_one_and_update(
            {"_id": queue_counter_id(schedule_id)},
            {"$inc": {"seq": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
            session=tx.session,
        )
        assert counter is not None
        return int(counter["seq"])
