"""The follow-up dashboard of one organization over a period ``[since, until)``.

Bounded, index-backed ``find()`` queries by organization and time, summed up in Python
(the embedded MongoDB stand-in lacks some aggregation stages). Definitions:

* **plans_started**: plans made in the period (``created_at``).
* **tasks**: tasks due in the period (``due_at``), not cancelled or skipped: ``due``,
  ``completed`` (done), ``completion_rate`` (completed / due), ``unreachable``.
  ``reach_rate``: of the call attempts recorded on those tasks, the share where a human
  answered (:data:`REACHED_OUTCOMES`; not ``no_answer`` or ``wrong_number``).
  ``overdue_now``: tasks ``due`` or still ``scheduled`` whose due time has passed.
* **risk_flags**: raised in the period (``raised_at``): count by level, acknowledged,
  median and p90 (nearest rank) of ``response_seconds`` of the acknowledged ones.
* **satisfaction**: surveys sent in the period, by department (``survey_results.py``).
* **complaints**: received in the period (``received_at``), by category and status,
  ``escalated`` (escalation level above 0); ``deadline_compliance``: of the complaints
  whose deadline falls in the period (not withdrawn), the share resolved (or closed) on
  or before it.

Rates are 0-1 and ``None`` when there is nothing to divide by.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from services.followup.store import COMPLAINTS, PLANS, RISK_FLAGS, TASKS
from services.followup.survey_results import summarize
from services.followup.surveys import Surveys
from shared.audit import AuditLog
from shared.mongo import Database, Document
from shared.principal import Principal

REACHED_OUTCOMES = frozenset(
    {
        "reached",
        "agreed_to_visit",
        "call_back",
        "refused",
        "moved_away",
        "visited_elsewhere",
        "transferred",
        "deceased",
    }
)
NOT_WORK = ["cancelled", "skipped"]
MAX_DOCS = 50_000  # a dashboard's bound per query


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (``share`` in 0-1) of ``values``; ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


class Figures:
    def __init__(self, db: Database, surveys: Surveys, audit: AuditLog) -> None:
        self.db = db
        self.surveys = surveys
        self.audit = audit

    async def dashboard(
        self,
        principal: Principal,
        org_id: str,
        since: datetime,
        until: datetime,
        reason: str | None,
    ) -> dict[str, Any]:
        period = {"$gte": since, "$lt": until}
        figures = {
            "org_id": org_id,
            "since": since,
            "until": until,
            "follow_up": await self._follow_up(org_id, period),
            "risk_flags": await self._risk_flags(org_id, period),
            "satisfaction": summarize(
                await self.surveys.sent_between(org_id, since, until), "department"
            ),
            "complaints": await self._complaints(org_id, period),
        }
        await self.audit.record(
            principal,
            "followup.figures.read",
            patient_id=None,
            resource="followup:figures",
            reason=reason,
            org_id=org_id,
        )
        return figures

    async def _find(
        self, collection: str, query: dict[str, Any], fields: Sequence[str]
    ) -> list[Document]:
        projection = dict.fromkeys(fields, 1)
        return await self.db[collection].find(query, projection).to_list(MAX_DOCS)

    async def _follow_up(self, org_id: str, period: dict[str, Any]) -> dict[str, Any]:
        plans = await self.db[PLANS].count_documents({"org_id": org_id, "created_at": period})
        tasks = await self._find(
            TASKS,
            {"org_id": org_id, "due_at": period, "status": {"$nin": NOT_WORK}},
            ("status", "attempts.outcome"),
        )
        statuses = Counter(t["status"] for t in tasks)
        outcomes = [a.get("outcome") for t in tasks for a in t.get("attempts", [])]
        reached = sum(1 for o in outcomes if o in REACHED_OUTCOMES)
        overdue = await self.db[TASKS].count_documents(
            {
                "org_id": org_id,
                "status": {"$in": ["due", "scheduled"]},
                "due_at": {"$lt": datetime.now(UTC)},
            }
        )
        return {
            "plans_started": plans,
            "tasks_due": len(tasks),
            "completed": statuses["done"],
            "completion_rate": _rate(statuses["done"], len(tasks)),
            "call_attempts": len(outcomes),
            "reached_attempts": reached,
            "reach_rate": _rate(reached, len(outcomes)),
            "unreachable": statuses["unreachable"],
            "overdue_now": overdue,
        }

    async def _risk_flags(self, org_id: str, period: dict[str, Any]) -> dict[str, Any]:
        flags = await self._find(
            RISK_FLAGS,
            {"org_id": org_id, "raised_at": period},
            ("level", "status", "response_seconds"),
        )
        seconds = [
            float(f["response_seconds"])
            for f in flags
            if f.get("status") == "acknowledged" and f.get("response_seconds") is not None
        ]
        return {
            "count": len(flags),
            "by_level": dict(sorted(Counter(str(f.get("level")) for f in flags).items())),
            "acknowledged": sum(1 for f in flags if f.get("status") == "acknowledged"),
            "median_response_seconds": median(seconds),
            "p90_response_seconds": percentile(seconds, 0.9),
        }

    async def _complaints(self, org_id: str, period: dict[str, Any]) -> dict[str, Any]:
        received = await self._find(
            COMPLAINTS,
            {"org_id": org_id, "received_at": period},
            ("category", "status", "escalation_level"),
        )
        due = await self._find(
            COMPLAINTS,
            {"org_id": org_id, "deadline_at": period, "status": {"$ne": "withdrawn"}},
            ("status", "deadline_at", "resolved_at", "history"),
        )
        on_time = sum(1 for c in due if _met_deadline(c))
        return {
            "count": len(received),
            "by_category": dict(sorted(Counter(str(c.get("category")) for c in received).items())),
            "by_status": dict(sorted(Counter(str(c.get("status")) for c in received).items())),
            "escalated": sum(1 for c in received if (c.get("escalation_level") or 0) > 0),
            "due_in_period": len(due),
            "resolved_on_time": on_time,
            "deadline_compliance": _rate(on_time, len(due)),
        }


def _resolved_at(complaint: Document) -> datetime | None:
    """When it was resolved: ``resolved_at``, else the last ``resolved`` of its history."""
    if complaint.get("resolved_at") is not None:
        return _aware(complaint["resolved_at"])
    times = [h["at"] for h in complaint.get("history", []) if h.get("type") == "resolved"]
    return _aware(max(_aware(t) for t in times)) if times else None


def _met_deadline(complaint: Document) -> bool:
    if complaint.get("status") not in ("resolved", "closed"):
        return False
    resolved = _resolved_at(complaint)
    deadline = complaint.get("deadline_at")
    return resolved is not None and deadline is not None and resolved <= _aware(deadline)
