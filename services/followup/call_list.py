"""The hotline's call list and the nurses' escalations, as views of the tasks.

Agents see their organization's due call tasks (alliance admins and services name the
organization), filtered by department, priority and due time, in the order of
``domain/calls.py``: higher risk first, then the longest overdue (``risk_rank`` descending,
``due_at`` ascending: the earlier due, the more days overdue). Each list read is audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.followup.plans import task_view
from services.followup.store import TASKS
from shared.audit import AuditLog
from shared.mongo import Database
from shared.principal import Principal
from shared.scoping import org_filter

CALLABLE_KINDS = ["call", "questionnaire"]  # unanswered questionnaires are asked by phone


class CallList:
    def __init__(self, db: Database, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    async def due(
        self,
        principal: Principal,
        *,
        org_id: str | None,
        department_id: str | None,
        priority: str | None,
        due_before: datetime | None,
        mine: bool,
        limit: int,
        reason: str | None,
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"status": "due", "kind": {"$in": CALLABLE_KINDS}}
        return await self._list(
            principal,
            query,
            "followup.call_list.read",
            org_id=org_id,
            department_id=department_id,
            priority=priority,
            due_before=due_before,
            mine=mine,
            limit=limit,
            reason=reason,
        )

    async def escalations(
        self, principal: Principal, *, org_id: str | None, limit: int, reason: str | None
    ) -> list[dict[str, Any]]:
        """Patients no call reached: the nurses take them over."""
        return await self._list(
            principal,
            {"status": "unreachable"},
            "followup.escalations.read",
            org_id=org_id,
            limit=limit,
            reason=reason,
        )

    async def _list(
        self,
        principal: Principal,
        query: dict[str, Any],
        action: str,
        *,
        org_id: str | None,
        limit: int,
        reason: str | None,
        department_id: str | None = None,
        priority: str | None = None,
        due_before: datetime | None = None,
        mine: bool = False,
    ) -> list[dict[str, Any]]:
        org = org_filter(principal) or org_id
        if org is not None:
            query["org_id"] = org
        if department_id:
            query["department_id"] = department_id
        if priority:
            query["priority"] = priority
        if due_before:
            query["due_at"] = {"$lte": due_before}
        if mine:
            query["claim.agent_id"] = principal.subject
        cursor = self.db[TASKS].find(query, sort=[("risk_rank", -1), ("due_at", 1), ("_id", 1)])
        docs = await cursor.to_list(limit)
        await self.audit.record(
            principal,
            action,
            patient_id=None,
            resource="followup_tasks",
            reason=reason,
            org_id=org,
            details={"count": len(docs), "patients": sorted({d["patient_id"] for d in docs})},
        )
        return [task_view(d) for d in docs]
