"""Which organizations of the alliance a patient is reached through (``shared.scoping``).

A real-name patient is registered once for the whole alliance; staff of an organization
see the patient when the patient is treated there: a booking, a waitlist entry or an
offence (no-show, late cancellation) at the organization, or a link that its counter or
hotline verified (``org_ids`` on the patient).
"""

from __future__ import annotations

from services.appointments.store import APPOINTMENTS, PATIENT_RECORDS, WAITLIST
from shared.mongo import Database, Document
from shared.principal import Principal
from shared.scoping import sees_every_org


class PatientOrgs:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def treats(self, patient: Document, org_id: str) -> bool:
        """Is the patient treated at ``org_id`` (booked, waitlisted or linked there)?"""
        if org_id in patient.get("org_ids", []):
            return True
        for collection in (APPOINTMENTS, WAITLIST):
            query = {"patient_id": patient["_id"], "org_id": org_id}
            if await self.db[collection].count_documents(query, limit=1):
                return True
        offences = {  # no-shows and late cancellations counted at the organization; those
            # stored before offences named one count wherever they are looked at (records.py)
            "_id": patient["_id"],
            "$or": [
                {"no_shows.org_id": org_id},
                {"late_cancels.org_id": org_id},
                {"no_shows": {"$type": "date"}},
                {"late_cancels": {"$type": "date"}},
            ],
        }
        return await self.db[PATIENT_RECORDS].count_documents(offences, limit=1) > 0

    async def visible_to(self, principal: Principal, patient: Document) -> bool:
        """May this staff or service caller see the patient? (Accounts: ownership instead.)"""
        if sees_every_org(principal):
            return True
        if not principal.is_staff or principal.org_id is None:
            return False
        return await self.treats(patient, principal.org_id)
