"""Read side: a patient's or an account's appointments, one appointment with ownership."""

from __future__ import annotations

from typing import Any

from services.appointments.policies import Policies
from services.appointments.store import APPOINTMENTS
from services.appointments.views import appointment_view
from shared.mongo import Database, Document
from shared.principal import Principal, Role
from shared.problems import NotFound


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

    async def for_patient(self, patient_id: str, limit: int = 100) -> list[dict[str, Any]]:
        docs = (
            await self.db[APPOINTMENTS]
            .find({"patient_id": patient_id})
            .sort("starts_at", -1)
            .to_list(limit)
        )
        return await self.views(docs)

    async def for_account(
        self, account_id: str, *, status: str | None, limit: int, before: str | None
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"account_id": account_id}
        if status:
            query["status"] = status
        if before:
            query["_id"] = {"$lt": before}
        docs = await self.db[APPOINTMENTS].find(query).sort("_id", -1).to_list(limit)
        return await self.views(docs)

    async def get_document(self, principal: Principal, appointment_id: str) -> Document:
        doc = await self.db[APPOINTMENTS].find_one({"_id": appointment_id})
        visible = doc is not None and (
            principal.is_staff
            or Role.SERVICE in principal.roles
            or doc["account_id"] == principal.subject
            or doc["patient_id"] in principal.patient_ids
        )
        if not visible or doc is None:  # someone else's booking looks like no booking (API1)
            raise NotFound("appointment_not_found", "no such appointment", detail_zh="预约不存在")
        return doc
