"""The dispatcher's board and the transport figures of one organization.

Figures over a window of days (by when the transport was asked for):

* by priority: how many, the median response time (asked for to accepted by a porter)
  and pickup time (asked for, or the set pickup time when later, to the porter having
  the patient), and how many missed each deadline (escalated);
* per porter: jobs assigned, completed, failed;
* late arrivals at exams caused by transport: transports tied to an exam that arrived
  after the exam's start (with their ids, for the review).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from statistics import median
from typing import Any

from services.referrals.domain.transport import Priority, State
from services.referrals.store import TRANSPORTS
from shared.audit import AuditLog
from shared.domain_errors import Invalid
from shared.mongo import Database, Document
from shared.principal import Principal
from shared.scoping import ensure_org, org_filter

LIST_LIMIT = 200
FIGURES_LIMIT = 20_000


def _org(principal: Principal, org_id: str | None) -> str:
    org = org_id or org_filter(principal)
    if org is None:
        raise Invalid(
            "org_required",
            "name the organization (org_id)",
            detail_zh="请指定机构",
            extra={"field": "org_id"},
        )
    ensure_org(principal, org)
    return org


def _seconds(start: Any, end: Any) -> float | None:
    if start is None or end is None:
        return None
    seconds: float = (end - start).total_seconds()
    return max(0.0, seconds)


def _median(values: list[float]) -> float | None:
    return round(median(values), 1) if values else None


def figures_of(docs: list[Document]) -> dict[str, Any]:
    """The figures of ``docs`` (pure: the transports as stored)."""
    by_priority: dict[str, Any] = {}
    for priority in Priority:
        mine = [d for d in docs if d["priority"] == priority.value]
        response = [
            s
            for d in mine
            if (s := _seconds(d["requested_at"], d["times"].get(State.EN_ROUTE.value))) is not None
        ]
        pickup = [
            s
            for d in mine
            if (
                s := _seconds(
                    max(d["requested_at"], d.get("pickup_at") or d["requested_at"]),
                    d["times"].get(State.WITH_PATIENT.value),
                )
            )
            is not None
        ]
        by_priority[priority.value] = {
            "count": len(mine),
            "median_response_seconds": _median(response),
            "median_pickup_seconds": _median(pickup),
            "missed_response": sum(1 for d in mine if d.get("escalated", {}).get("response")),
            "missed_pickup": sum(1 for d in mine if d.get("escalated", {}).get("pickup")),
        }
    porters: dict[str, dict[str, int]] = {}
    for d in docs:
        if d.get("porter_id"):
            row = porters.setdefault(d["porter_id"], {"jobs": 0, "completed": 0, "failed": 0})
            row["jobs"] += 1
            row["completed"] += d["state"] == State.COMPLETED.value
            row["failed"] += d["state"] == State.FAILED.value
    late = [
        d["_id"]
        for d in docs
        if d.get("appointment_starts_at") is not None
        and d["times"].get(State.ARRIVED.value) is not None
        and d["times"][State.ARRIVED.value] > d["appointment_starts_at"]
    ]
    return {
        "total": len(docs),
        "by_priority": by_priority,
        "per_porter": [{"porter_id": k, **v} for k, v in sorted(porters.items())],
        "late_exam_arrivals": {"count": len(late), "transport_ids": late[:100]},
    }


class TransportBoard:
    def __init__(self, db: Database, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    async def list_for(
        self, principal: Principal, org_id: str | None, state: str | None
    ) -> list[Document]:
        """The dispatcher's board: the organization's transports, newest first."""
        org = _org(principal, org_id)
        query: dict[str, Any] = {"org_id": org}
        if state is not None:
            query["state"] = State(state).value
        docs: list[Document] = (
            await self.db[TRANSPORTS]
            .find(query)
            .sort("requested_at", -1)
            .limit(LIST_LIMIT)
            .to_list()
        )
        await self.audit.record(
            principal,
            "transport.list",
            patient_id=None,
            resource=f"transports:{org}",
            details={"state": state, "count": len(docs)},
            org_id=org,
        )
        return docs

    async def figures(self, principal: Principal, org_id: str | None, days: int) -> dict[str, Any]:
        org = _org(principal, org_id)
        since = datetime.now(UTC) - timedelta(days=days)
        docs = (
            await self.db[TRANSPORTS]
            .find({"org_id": org, "requested_at": {"$gte": since}}, {"history": 0})
            .limit(FIGURES_LIMIT)
            .to_list()
        )
        return {"org_id": org, "since": since, "days": days, **figures_of(docs)}
