"""Appointments' real-name patients, as far as referrals needs them: that a patient id is
real, which accounts manage the patient (their own referrals in the mini-program), and
the organizations where the patient has booked or checked in (``org_ids``: a transport
is asked for a patient known at the organization, ``transport_access.py``).

Projected from ``patient.registered`` and ``patient.unlinked`` (``org_ids`` from
``appointment.booked`` / ``checked_in``); the national ID and the
phone number are never copied (the events carry the phone encrypted: it is not kept).
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.referrals.store import CASES, PATIENTS
from shared.mongo import Database, Session
from shared.patient_projection import registration_update


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

    async def registered(
        self, session: Session, *, patient_id: str, account_id: str | None
    ) -> None:
        await self.db[PATIENTS].update_one(
            {"_id": patient_id},
            registration_update(account_id, {"updated_at": datetime.now(UTC)}),
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

    async def seen_at(self, session: Session, *, patient_id: str, org_id: str | None) -> None:
        """The patient booked or checked in at ``org_id`` (appointments' events)."""
        if not org_id:
            return
        await self.db[PATIENTS].update_one(
            {"_id": patient_id},
            {"$addToSet": {"org_ids": org_id}, "$set": {"updated_at": datetime.now(UTC)}},
            session=session,
        )

    async def known_at(self, patient_id: str, org_id: str) -> bool:
        """Is the patient one of ``org_id``'s: booked or seen there, or referred from or to it?"""
        if await self.db[PATIENTS].count_documents({"_id": patient_id, "org_ids": org_id}, limit=1):
            return True
        query = {
            "patient_id": patient_id,
            "$or": [{"sending_org_id": org_id}, {"receiving_org_id": org_id}],
        }
        return await self.db[CASES].count_documents(query, limit=1) > 0
