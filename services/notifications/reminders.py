"""Appointment reminders: timed jobs at configurable offsets before the visit.

Scheduled when a booking is made, moved when it is rescheduled (the new appointment gets
its own, the old one's are cancelled), dropped when it is cancelled or the patient has
checked in. Each reminder is one job under a stable key, claimed with a lease, so it
fires once across replicas; its messages are deduplicated by that key too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from services.notifications.dispatch import Dispatcher
from services.notifications.domain.rules import reminder_times
from services.notifications.message_kinds import MessageKinds
from services.notifications.messages import Source
from shared.jobs import JOBS, Job, schedule_job
from shared.mongo import Database
from shared.outbox import Tx

log = structlog.get_logger(__name__)

REMINDER_JOB = "notification.reminder"
REMINDER_KIND = "appointment.reminder"


def reminder_key(appointment_id: str, minutes_before: int) -> str:
    return f"reminder:{appointment_id}:{minutes_before}"


@dataclass
class Reminders:
    db: Database
    message_kinds: MessageKinds
    dispatcher: Dispatcher
    offsets_minutes: Sequence[int]

    async def schedule(self, tx: Tx, facts: Mapping[str, Any], now: datetime | None = None) -> int:
        """Schedule the reminders still ahead of the appointment described by ``facts``."""
        starts_at = datetime.fromisoformat(str(facts["starts_at"]))
        due = reminder_times(starts_at, self.offsets_minutes, now or datetime.now(UTC))
        for minutes, at in due:
            await schedule_job(
                self.db,
                tx.session,
                kind=REMINDER_JOB,
                due_at=at,
                payload={
                    "appointment_id": facts["appointment_id"],
                    "minutes_before": minutes,
                    "facts": dict(facts),
                },
                key=reminder_key(facts["appointment_id"], minutes),
            )
        return len(due)

    async def cancel(self, tx: Tx, appointment_id: str) -> int:
        result = await self.db[JOBS].update_many(
            {
                "kind": REMINDER_JOB,
                "payload.appointment_id": appointment_id,
                "status": "scheduled",
            },
            {"$set": {"status": "cancelled", "updated_at": datetime.now(UTC)}},
            session=tx.session,
        )
        return result.modified_count

    async def fire(self, job: Job, tx: Tx) -> None:
        kind = self.message_kinds.get(REMINDER_KIND)
        if kind is None:
            log.error("reminder.kind_missing_from_catalog")
            return
        facts: dict[str, Any] = dict(job.payload["facts"])
        source = Source(
            id=job.key or job.id,
            event_type=None,
            patient_id=facts.get("patient_id"),
            account_id=facts.get("account_id"),
            org_id=facts.get("org_id"),
        )
        context = {**facts, "minutes_before": job.payload["minutes_before"]}
        await self.dispatcher.dispatch(tx, kind, source, context)
