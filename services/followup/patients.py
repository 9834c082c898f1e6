"""Appointments' real-name patients, as far as follow-up needs them: who a discharged
patient is (by keyed national-ID hash), and which accounts manage the patient.

Projected from ``patient.registered`` / ``patient.unlinked`` (docs/adr/0007-followup.md).
The national ID never travels: appointments sends its keyed hash (the alliance's
``pii_hash_key``), and the intake hashes a discharge's PID-3 national ID the same way.
A registration may arrive after the discharge: the discharges waiting for that hash are
then matched (``discharges.Discharges.patient_registered``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.followup.store import PATIENTS
from shared.crypto import FieldCipher
from shared.mongo import Database, Session
from shared.patient_projection import registration_update


class KnownPatients:
    def __init__(self, db: Database, cipher: FieldCipher) -> None:
        self.db = db
        self.cipher = cipher

    def national_id_hashes(self, national_id: str) -> list[str]:
        """The keyed hashes a national ID may be stored under (current key, then legacy)."""
        return self.cipher.lookup_hashes(national_id, kind="national_id")

    async def find_by_hashes(self, hashes: list[str], session: Session | None) -> str | None:
        doc = await self.db[PATIENTS].find_one(
            {"national_id_hash": {"$in": hashes}}, {"_id": 1}, session=session
        )
        return str(doc["_id"]) if doc else None

    async def exists(self, patient_id: str, session: Session | None = None) -> bool:
        found = await self.db[PATIENTS].count_documents(
            {"_id": patient_id}, limit=1, session=session
        )
        return found > 0

    async def hash_of(self, patient_id: str, session: Session | None = None) -> str | None:
        doc = await self.db[PATIENTS].find_one({"_id": patient_id}, session=session)
        return doc.get("national_id_hash") if doc else None

    async def manages(self, account_id: str, patient_id: str) -> bool:
        query = {"_id": patient_id, "account_ids": account_id}
        return await self.db[PATIENTS].count_documents(query, limit=1) > 0

    async def managed_by(self, account_id: str) -> set[str]:
        cursor = self.db[PATIENTS].find({"account_ids": account_id}, {"_id": 1})
        return {d["_id"] async for d in cursor}

    async def registered(
        self,
        session: Session,
        *,
        patient_id: str,
        account_id: str | None,
        national_id_hash: str | None,
    ) -> None:
        fields: dict[str, object] = {"updated_at": datetime.now(UTC)}
        if national_id_hash:
            fields["national_id_hash"] = national_id_hash
        await self.db[PATIENTS].update_one(
            {"_id": patient_id},
            registration_update(account_id, fields),
            upsert=True,
            session=session,
        )

    async def unlinked(self, session: Session, *, patient_id: str, account_id: str) -> None:
        await self.db[PATIENTS].update_one(
            {"_id": patient_id},
            {"$pull": {"account_ids": account_id}, "$set": {"updated_at": datetime.now(UTC)}},
            session=session,
        )
