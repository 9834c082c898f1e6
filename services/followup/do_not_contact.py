"""Do-not-contact: a patient who asked not to be called or messaged by follow-up.

Set by staff (the patient asked on the phone or at the desk) or by the patient's own
account. While it is set, nothing falls due for the patient (``tasks.py``), surveys are
not sent, and the patient's open call and questionnaire tasks are skipped at once.
Every change is audited.
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.followup.store import DO_NOT_CONTACT, TASKS
from shared.audit import AuditLog
from shared.mongo import Database, Document, Session
from shared.principal import Principal


class DoNotContact:
    def __init__(self, db: Database, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    async def is_set(self, patient_id: str, session: Session | None = None) -> bool:
        found = await self.db[DO_NOT_CONTACT].count_documents(
            {"_id": patient_id}, limit=1, session=session
        )
        return found > 0

    async def get(self, patient_id: str) -> Document | None:
        return await self.db[DO_NOT_CONTACT].find_one({"_id": patient_id})

    async def set(
        self, principal: Principal, patient_id: str, note: str | None, reason: str | None
    ) -> Document:
        doc = {
            "_id": patient_id,
            "set_by": principal.subject,
            "set_by_role": principal.primary_role,
            "note": note,
            "set_at": datetime.now(UTC),
        }
        await self.db[DO_NOT_CONTACT].replace_one({"_id": patient_id}, doc, upsert=True)
        skipped = await self.db[TASKS].update_many(
            {"patient_id": patient_id, "status": {"$in": ["scheduled", "due"]}},
            {
                "$set": {"status": "skipped", "cancel_reason": "do_not_contact", "claim": None},
                "$inc": {"version": 1},
            },
        )
        await self.audit.record(
            principal,
            "followup.do_not_contact.set",
            patient_id=patient_id,
            resource=f"patient:{patient_id}",
            reason=reason,
            details={"tasks_skipped": skipped.modified_count},
        )
        return {**doc, "tasks_skipped": skipped.modified_count}

    async def clear(self, principal: Principal, patient_id: str, reason: str | None) -> bool:
        result = await self.db[DO_NOT_CONTACT].delete_one({"_id": patient_id})
        await self.audit.record(
            principal,
            "followup.do_not_contact.clear",
            patient_id=patient_id,
            resource=f"patient:{patient_id}",
            reason=reason,
        )
        return result.deleted_count == 1
