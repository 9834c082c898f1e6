"""The staff's queue of appeals: pending (or decided) appeals of one organization, oldest first.

A page holds the appeal, the patient's masked name and the offences counted when it was
filed; staff of an organization see only its appeals. Reading it is audited, once per
patient on the page (``penalty.appeals.list``).
"""

from __future__ import annotations

from typing import Any

from services.appointments.penalties import APPEAL, appeal_view
from services.appointments.store import PATIENTS, PENALTIES
from shared.audit import AuditLog
from shared.mongo import Database
from shared.principal import Principal
from shared.privacy import mask_name

APPEAL_STATUSES = ("pending", "approved", "rejected", "overridden")


class AppealQueue:
    def __init__(self, db: Database, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    async def page(
        self,
        principal: Principal,
        *,
        status: str,
        org_id: str | None,
        cursor: str | None,
        limit: int,
        reason: str | None,
    ) -> dict[str, Any]:
        """One page of appeals in filing order; ``next_cursor`` is None on the last page."""
        query: dict[str, Any] = {"kind": APPEAL, "status": status}
        if org_id is not None:
            query["org_id"] = org_id
        if cursor is not None:
            query["_id"] = {"$gt": cursor}
        db = self.db
        docs = await db[PENALTIES].find(query).sort("_id", 1).limit(limit).to_list(limit)
        patient_ids = sorted({str(d["patient_id"]) for d in docs})
        names = {
            p["_id"]: mask_name(p["name"])
            async for p in db[PATIENTS].find({"_id": {"$in": patient_ids}}, {"name": 1})
        }
        for patient_id in patient_ids:
            await self.audit.record(
                principal,
                "penalty.appeals.list",
                patient_id=patient_id,
                resource=f"patient:{patient_id}",
                reason=reason,
                details={"org_id": org_id, "status": status},
            )
        items = [
            {
                **appeal_view(d),
                "patient_name": names.get(d["patient_id"]),
                "offences": _offences(d.get("offences") or {}),
            }
            for d in docs
        ]
        next_cursor = docs[-1]["_id"] if len(docs) == limit else None
        return {"items": items, "next_cursor": next_cursor}


def _offences(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: summary[k] for k in ("no_shows", "late_cancels") if k in summary}
