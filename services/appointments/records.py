"""Each patient's booking record: offences (no-shows, late cancellations) and bans.

Bans are not stored as flags: they are computed from the offences in the policy's
sliding windows, so they lift by themselves when they expire. A staff override (with a
reason, audited) or an approved appeal clears the offences up to that moment.

Everything is per organization: an offence is stored with the organization it happened
at (``{"at": ..., "org_id": ...}``) and counts only under that organization's policy; a
clearance lifts one organization's ban (``cleared.<org_id>``). Offences stored before
this (plain datetimes, no organization) count at every organization, and the old global
``cleared_at`` clears them everywhere.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument

from services.appointments.domain import penalty_rules
from services.appointments.domain.policy import BookingPolicy
from services.appointments.store import PATIENT_RECORDS
from shared.mongo import Database, Document, Session
from shared.outbox import Tx

OFFENCE_FIELDS = ("no_shows", "late_cancels")


class PatientRecords:
    """``on_change`` hears of every change to a patient's offences or clearances once it
    is committed (the admission cache forgets the record)."""

    def __init__(
        self, db: Database, on_change: Callable[[str], Awaitable[None]] | None = None
    ) -> None:
        self.collection = db[PATIENT_RECORDS]
        self.on_change = on_change

    def _changed(self, tx: Tx | None, patient_id: str) -> None:
        if self.on_change is not None and tx is not None:
            on_change = self.on_change
            tx.after_commit.append(lambda: on_change(patient_id))

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
    def _counted(record: Document, field: str, org_id: str) -> list[datetime]:
        cleared = [
            c for c in (record.get("cleared_at"), record.get("cleared", {}).get(org_id)) if c
        ]
        since = max(cleared) if cleared else None
        out = []
        for entry in record.get(field, []):
            if isinstance(entry, datetime):  # stored without an organization: counts anywhere
                at = entry
            elif entry.get("org_id") == org_id:
                at = entry["at"]
            else:
                continue
            if since is None or at > since:
                out.append(at)
        return out

    @staticmethod
    def org_ids(record: Document) -> set[str]:
        """The organizations where the patient has offences on record."""
        return {
            str(entry["org_id"])
            for field in OFFENCE_FIELDS
            for entry in record.get(field, [])
            if isinstance(entry, dict) and entry.get("org_id")
        }

    @staticmethod
    def has_untagged(record: Document) -> bool:
        return any(isinstance(e, datetime) for f in OFFENCE_FIELDS for e in record.get(f, []))

    def banned_until(
        self, record: Document, policy: BookingPolicy, now: datetime, org_id: str
    ) -> datetime | None:
        """When the patient's ban at ``org_id`` (under its ``policy``) ends, if banned."""
        bans = [
            penalty_rules.ban_until(
                self._counted(record, "no_shows", org_id), policy.no_show_penalty, now
            ),
            penalty_rules.ban_until(
                self._counted(record, "late_cancels", org_id), policy.late_cancel_penalty, now
            ),
        ]
        active = [b for b in bans if b is not None]
        return max(active) if active else None

    def offences_in_window(
        self, record: Document, field: str, days: int, now: datetime, org_id: str
    ) -> int:
        since = now - timedelta(days=days)
        return sum(1 for t in self._counted(record, field, org_id) if t >= since)

    async def add_offence(
        self,
        patient_id: str,
        field: str,
        at: datetime,
        session: Session | None,
        *,
        org_id: str,
        tx: Tx | None = None,
    ) -> Document:
        self._changed(tx, patient_id)
        doc = await self.collection.find_one_and_update(
            {"_id": patient_id},
            {"$push": {field: {"at": at, "org_id": org_id}}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        assert doc is not None
        return doc

    async def clear(
        self,
        patient_id: str,
        *,
        org_id: str,
        by: str,
        reason: str,
        session: Session | None = None,
        tx: Tx | None = None,
    ) -> None:
        """Lift the patient's ban at ``org_id``: its offences up to now stop counting."""
        self._changed(tx, patient_id)
        now = datetime.now(UTC)
        update: dict[str, Any] = {
            "$set": {f"cleared.{org_id}": now},
            "$push": {"clearances": {"at": now, "by": by, "reason": reason, "org_id": org_id}},
        }
        await self.collection.update_one({"_id": patient_id}, update, upsert=True, session=session)
