"""Reading complaints: the organization's list for its staff, one complaint (staff of its
organization with its history, or the complainant's account without), and a patient
account's own complaints. Staff and service reads are audited."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.followup.complaint_access import complainant_patients, is_patient_account
from services.followup.complaint_records import (
    complaint_not_found,
    patient_view,
    staff_view,
)
from services.followup.domain.complaint import OPEN_STATUSES, Status
from services.followup.patients import KnownPatients
from services.followup.store import COMPLAINTS
from shared.audit import AuditLog, require_reason
from shared.mongo import Database, Document
from shared.principal import Principal
from shared.problems import Forbidden, Unprocessable
from shared.scoping import ensure_org, sees_every_org


class ComplaintReads:
    def __init__(self, db: Database, patients: KnownPatients, audit: AuditLog) -> None:
        self.db = db
        self.patients = patients
        self.audit = audit

    async def list_for(
        self,
        principal: Principal,
        *,
        org_id: str | None,
        status: Status | None,
        mine: bool,
        overdue: bool,
        limit: int,
        reason: str | None,
        patient_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """The organization's complaints, the nearest deadline first (staff; audited);
        ``patient_id``: one patient's only (a reason is required, the read names them)."""
        if is_patient_account(principal):
            raise Forbidden(
                "forbidden_role",
                "patients see their own complaints",
                detail_zh="患者仅可查看本人投诉",
            )
        if sees_every_org(principal) and org_id is None:
            raise Unprocessable(
                "org_id_required", "name the organization", detail_zh="请指定医疗机构"
            )
        org = org_id or principal.org_id
        ensure_org(principal, org)
        query: dict[str, Any] = {"org_id": org}
        if patient_id is not None:
            require_reason(principal, reason, "a patient's complaints")
            query["patient_id"] = patient_id
        statuses = {status} if status else None
        if overdue:
            statuses = (statuses or set(OPEN_STATUSES)) & OPEN_STATUSES
            query["deadline_at"] = {"$lt": datetime.now(UTC)}
        if statuses is not None:
            query["status"] = {"$in": sorted(s.value for s in statuses)}
        if mine:
            query["owner_id"] = principal.subject
        cursor = self.db[COMPLAINTS].find(query, sort=[("deadline_at", 1), ("_id", 1)])
        found = await cursor.to_list(limit)
        await self.audit.record(
            principal,
            "followup.complaint.list",
            patient_id=patient_id,
            resource=f"complaints:{org}" + (f":patient:{patient_id}" if patient_id else ""),
            reason=reason,
            org_id=org,
            details={
                "status": status.value if status else None,
                "mine": mine,
                "overdue": overdue,
                "count": len(found),
            },
        )
        return [staff_view(d, with_history=False) for d in found]

    async def get_for(
        self, principal: Principal, complaint_id: str, reason: str | None
    ) -> dict[str, Any]:
        """Staff of its organization: with the history (audited; a reason is required).
        The complainant's account: without owner or history."""
        doc = await self.get(complaint_id)
        if is_patient_account(principal):
            await complainant_patients(self.patients, principal, doc)
            return patient_view(doc)
        ensure_org(principal, doc["org_id"])
        require_reason(principal, reason, "a complaint")
        await self.audit.record(
            principal,
            "followup.complaint.read",
            patient_id=doc.get("patient_id"),
            resource=f"complaint:{complaint_id}",
            reason=reason,
            org_id=doc["org_id"],
        )
        return staff_view(doc)

    async def get(self, complaint_id: str) -> Document:
        doc = await self.db[COMPLAINTS].find_one({"_id": complaint_id})
        if doc is None:
            raise complaint_not_found(complaint_id)
        return doc

    async def mine(self, principal: Principal, limit: int) -> list[dict[str, Any]]:
        """A patient account's complaints: raised by it, or about a patient it manages."""
        if not is_patient_account(principal):
            raise Forbidden(
                "forbidden_role",
                "this list is for patient accounts",
                detail_zh="仅患者账号可查看",
            )
        managed = await self.patients.managed_by(principal.subject) | set(principal.patient_ids)
        query = {
            "$or": [
                {"complainant_account_id": principal.subject},
                {"patient_id": {"$in": sorted(managed)}},
            ]
        }
        cursor = self.db[COMPLAINTS].find(query, sort=[("received_at", -1), ("_id", 1)])
        return [patient_view(d) for d in await cursor.to_list(limit)]
