"""Each patient's booking record: offences (no-shows, late cancellations) and bans.

Bans are not stored as flags: they are computed from the offences in the policy's
sliding windows, so they lift by themselves when they expire. A staff override (with a
reason, audited) or an approved appeal clears the offences up to that moment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument

from services.appointments.domain import rules
from services.appointments.domain.policy import BookingPolicy
from services.appointments.store import PATIENT_RECORDS
from shared.mongo import Database, Document, Session


class PatientRecords:
    def __init__(self, db: Database) -> None:
        self.collection = db[PATIENT_RECORDS]

    async def lock(self, patient_id: str, session: Session | None) -> Document:
        """Touch the record inside the caller's transaction: one patient's bookings serialize."""
        doc = await self.collection.find_one_and_update(
            {"_id": patient_id},
            {"$inc": {"writes": 1}, "$setOnInsert": {"no_shows": [], "late_cancels": []}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        assert doc is not None
        return doc

    async def get(self, patient_id: str) -> Document:
        return await self.collection.find_one({"_id": patient_id}) or {
            "_id": patient_id,
            "no_shows": [],
            "late_cancels": [],
        }

    @staticmethod
    def _counted(record: Document, field: str) -> list[datetime]:
        cleared = record.get("cleared_at")
        return [t for t in record.get(field, []) if cleared is None or t > cleared]

    def banned_until(
        self, record: Document, policy: BookingPolicy, now: datetime
    ) -> datetime | None:
        bans = [
            rules.ban_until(self._counted(record, "no_shows"), policy.no_show_penalty, now),
            rules.ban_until(self._counted(record, "late_cancels"), policy.late_cancel_penalty, now),
        ]
        active = [b for b in bans if b is not None]
        return max(active) if active else None

    def offences_in_window(self, record: Document, field: str, days: int, now: datetime) -> int:
        return sum(1 for t in self._counted(record, field) if t >= now - timedelta(days=days))

    async def add_offence(
        self, patient_id: str, field: str, at: datetime, session: Session | None
    ) -> Document:
        doc = await self.collection.find_one_and_update(
            {"_id": patient_id},
            {"$push": {field: at}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        assert doc is not None
        return doc

    async def clear(
        self, patient_id: str, *, by: str, reason: str, session: Session | None = None
    ) -> None:
        now = datetime.now(UTC)
        update: dict[str, Any] = {
            "$set": {"cleared_at": now},
            "$push": {"clearances": {"at": now, "by": by, "reason": reason}},
        }
        await self.collection.update_one({"_id": patient_id}, update, upsert=True, session=session)
