"""After a session: bookings never checked in become no-shows; enough of them ban booking."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from services.appointments.domain import change_rules
from services.appointments.domain.models import AppointmentStatus
from services.appointments.events import AppointmentNoShow
from services.appointments.policies import Policies
from services.appointments.records import PatientRecords
from services.appointments.store import APPOINTMENTS
from services.appointments.views import appointment_facts
from shared.events import make_event
from shared.mongo import Database
from shared.outbox import Tx

log = structlog.get_logger(__name__)


async def sweep_no_shows(
    db: Database,
    policies: Policies,
    records: PatientRecords,
    schedule_id: str,
    tx: Tx,
    now: datetime | None = None,
) -> int:
    """Mark the schedule's unchecked bookings whose check-in has closed; return how many."""
    now = now or datetime.now(UTC)
    marked = 0
    cursor = db[APPOINTMENTS].find(
        {"schedule_id": schedule_id, "status": AppointmentStatus.BOOKED.value}, session=tx.session
    )
    for doc in await cursor.to_list(None):
        policy = await policies.for_org(doc["org_id"])
        _opens, closes = change_rules.checkin_window(policy, doc["starts_at"], doc["ends_at"])
        if now <= closes:
            continue
        await db[APPOINTMENTS].update_one(
            {"_id": doc["_id"], "status": AppointmentStatus.BOOKED.value},
            {
                "$set": {
                    "status": AppointmentStatus.NO_SHOW.value,
                    "active": False,
                    "no_show_at": now,
                },
                "$inc": {"version": 1},
            },
            session=tx.session,
        )
        org_id = doc["org_id"]
        record = await records.add_offence(
            doc["patient_id"], "no_shows", doc["ends_at"], tx.session, org_id=org_id, tx=tx
        )
        rule = policy.no_show_penalty
        tx.emit(
            make_event(
                AppointmentNoShow(
                    **appointment_facts(doc),
                    no_shows_in_window=records.offences_in_window(
                        record, "no_shows", rule.window_days, now, org_id
                    ),
                    banned_until=records.banned_until(record, policy, now, org_id),
                ),
                source="appointments",
                subject=doc["patient_id"],
            )
        )
        marked += 1
    log.info("appointments.no_shows_marked", schedule_id=schedule_id, count=marked)
    return marked
