"""Read side: a patient's or an account's appointments, one appointment with ownership."""

from __future__ import annotations

from typing import Any

from services.appointments.policies import Policies
from services.appointments.store import APPOINTMENTS, PATIENTS
from services.appointments.views import appointment_view
from shared.mongo import Database, Document
from shared.principal import Principal, Role
from shared.problems import NotFound
from shared.scoping import may_see_org, other_org


class AppointmentQueries:
    def __init__(self, db: Database, policies: Policies) -> None:
        self.db = db
        self.policies = policies

    async def views(self, docs: list[Document]) -> list[dict[str, Any]]:
        out = []
        for doc in docs:
            policy = await self.policies.for_org(doc["org_id"])
            out.append(appointment_view(doc, policy.timezone))
        return out

    async def for_patient(
        self, patient_id: str, limit: int = 100, *, org_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The patient's appointments; ``org_id``: only those at that organization."""
        query: dict[str, Any] = {"patient_id": patient_id}
        if org_id is not None:
            query["org_id"] = org_id
        docs = await self.db[APPOINTMENTS].find(query).sort("starts_at", -1).to_list(limit)
        return await self.views(docs)

    async def for_account(
        self, account_id: str, *, status: str | None, limit: int, before: str | None
    ) -> list[dict[str, Any]]:
        """The account's bookings for the patients it still manages (a patient it let go
        takes their bookings with them)."""
        linked = await self.db[PATIENTS].distinct("_id", {"account_ids": account_id})
        query: dict[str, Any] = {"account_id": account_id, "patient_id": {"$in": linked}}
        if status:
            query["status"] = status
        if before:
            query["_id"] = {"$lt": before}
        docs = await self.db[APPOINTMENTS].find(query).sort("_id", -1).to_list(limit)
        return await self.views(docs)

    async def get_document(self, principal: Principal, appointment_id: str) -> Document:
        """The appointment, if the caller may see it: staff and services of its organization
        (``shared.scoping``), or the account that booked it while it still manages the
        patient. Anyone else's booking looks like no booking (API1)."""
        doc = await self.db[APPOINTMENTS].find_one({"_id": appointment_id})
        if doc is not None and (principal.is_staff or Role.SERVICE in principal.roles):
            if not may_see_org(principal, doc["org_id"]):
                raise other_org()  # refused and audited (shared.audit.record_denial)
            return doc
        if doc is None or not await self._owned(doc, principal):
            raise NotFound("appointment_not_found", "no such appointment", detail_zh="预约不存在")
        return doc

    async def _owned(self, doc: Document, principal: Principal) -> bool:
        if doc["account_id"] != principal.subject:
            return False
        linked = {"_id": doc["patient_id"], "account_ids": principal.subject}
        return await self.db[PATIENTS].count_documents(linked, limit=1) > 0
