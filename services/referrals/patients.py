"""Appointments' real-name patients, as far as referrals needs them: that a patient id is
real, and which accounts manage the patient (their own referrals in the mini-program).

Projected from ``patient.registered`` and ``patient.unlinked``; the national ID and the
phone number are never copied (the events carry the phone encrypted: it is not kept).
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.referrals.store import PATIENTS
from shared.mongo import Database, Session


class KnownPatients:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def exists(self, patient_id: str) -> bool:
        return await self.db[PATIENTS].count_documents({"_id": patient_id}, limit=1) > 0

    async def manages(self, account_id: str, patient_id: str) -> bool:
        """Does this patient account manage the patient (themselves or family)?"""
        query = {"_id": patient_id, "account_ids": account_id}
        return await self.db[PATIENTS].count_documents(query, limit=1) > 0

    async def managed_by(self, account_id: str) -> set[str]:
        cursor = self.db[PATIENTS].find({"account_ids": account_id}, {"_id": 1})
        return {d["_id"] async for d in cursor}

    async def registered(self, session: Session, *, patient_id: str, account_id: str) -> None:
        await self.db[PATIENTS].update_one(
            {"_id": patient_id},
            {
                "$addToSet": {"account_ids": account_id},
                "$set": {"updated_at": datetime.now(UTC)},
            },
            upsert=True,
            session=session,
        )

    async def unlinked(self, session: Session, *, patient_id: str, account_id: str) -> None:
        """The account no longer manages the patient; the patient stays a real patient."""
        await self.db[PATIENTS].update_one(
            {"_id": patient_id},
            {"$pull": {"account_ids": account_id}, "$set": {"updated_at": datetime.now(UTC)}},
            session=session,
        )
