"""Views of many cases: the incoming worklist of an organization's coordinators, the outgoing
list of referring doctors, a patient's own referrals, and the dashboard's figures.

Staff see their own organization's lists (``shared.scoping.org_filter``); alliance admins
and services name the organization. Staff lists are audited (one record a list).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from services.referrals.cases import sides
from services.referrals.domain.workflow import TaskStatus
from services.referrals.patients import KnownPatients
from services.referrals.store import CASES, OFFERS
from shared.audit import AuditLog
from shared.domain_errors import Invalid, NotFound
from shared.mongo import Database, Document
from shared.principal import Principal
from shared.scoping import org_filter, other_org, sees_every_org

INCOMING = ["requested", "accepted", "in-progress", "on-hold"]


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def case_view(doc: Document, principal: Principal, now: datetime | None = None) -> dict[str, Any]:
    """A case as staff see it (patients get :func:`patient_view`)."""
    now = now or datetime.now(UTC)
    due = _aware(doc.get("due_at"))
    view = {k: v for k, v in doc.items() if k not in ("_id", "offer_id", "live", "held")}
    view["referral_id"] = doc["_id"]
    view["sla_seconds_left"] = int((due - now).total_seconds()) if due else None
    view["your_sides"] = sorted(s.value for s in sides(principal, doc))
    return view


def patient_view(doc: Document) -> dict[str, Any]:
    """What the patient's own account sees: where the referral stands, the visit and the
    summary; not the routing, the staff's history or who declined."""
    keys = (
        "direction",
        "urgency",
        "status",
        "business_status",
        "sending_org_id",
        "receiving_org_id",
        "receiving_department_id",
        "specialty",
        "diagnosis",
        "reason",
        "booking",
        "summary",
        "created_at",
        "updated_at",
        "completed_at",
        "version",
    )
    return {"referral_id": doc["_id"], **{k: doc.get(k) for k in keys}}


LIST_KEYS = (
    "patient_id",
    "direction",
    "urgency",
    "status",
    "business_status",
    "sending_org_id",
    "receiving_org_id",
    "receiving_department_id",
    "specialty",
    "diagnosis",
    "booking",
    "version",
    "created_at",
)


def _list_item(doc: Document, now: datetime) -> dict[str, Any]:
    due = _aware(doc.get("due_at"))
    return {
        "referral_id": doc["_id"],
        **{k: doc.get(k) for k in LIST_KEYS},
        "due_at": due,
        "sla_seconds_left": int((due - now).total_seconds()) if due else None,
        "escalated": doc.get("escalated", False),
        "routing_explanation": (doc.get("routing") or {}).get("explanation"),
    }


def _patient_summary(doc: Document) -> dict[str, Any]:
    return {
        "referral_id": doc["_id"],
        "status": doc["status"],
        "business_status": doc.get("business_status"),
        "direction": doc["direction"],
        "urgency": doc.get("urgency"),
        "referring_org_id": doc["sending_org_id"],
        "receiving_org_id": doc.get("receiving_org_id"),
        "created_at": doc["created_at"],
        "diagnosis": doc.get("diagnosis"),
    }


class Worklists:
    def __init__(self, db: Database, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit
        self.patients = KnownPatients(db)  # a stateless view of the same database

    def _org(self, principal: Principal, org_id: str | None) -> str:
        own = org_filter(principal)
        if own is None:  # alliance admin, services: any organization, named
            if org_id is None:
                raise Invalid(
                    "org_id_required",
                    "name the organization (org_id): this caller sees every one",
                    detail_zh="请指定机构",
                    extra={"field": "org_id"},
                )
            return org_id
        if org_id not in (None, own):
            raise other_org()
        return own

    async def _list(
        self, principal: Principal, query: dict[str, Any], what: str, org_id: str, limit: int
    ) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        docs = [
            d
            async for d in self.db[CASES]
            .find(query)
            .sort([("due_at", 1), ("created_at", -1)])
            .limit(limit)
        ]
        await self.audit.record(
            principal,
            f"referral.{what}",
            patient_id=None,
            resource=f"org:{org_id}",
            details={"count": len(docs)},
            org_id=org_id,
        )
        return [_list_item(d, now) for d in docs]

    async def incoming(
        self,
        principal: Principal,
        *,
        org_id: str | None,
        status: str | None,
        urgency: str | None,
        direction: str | None,
        department_id: str | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        org = self._org(principal, org_id)
        query: dict[str, Any] = {"receiving_org_id": org, "status": status or {"$in": INCOMING}}
        for key, value in (
            ("urgency", urgency),
            ("direction", direction),
            ("receiving_department_id", department_id),
        ):
            if value:
                query[key] = value
        return await self._list(principal, query, "incoming_worklist", org, limit)

    async def outgoing(
        self,
        principal: Principal,
        *,
        org_id: str | None,
        mine: bool,
        status: str | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        org = self._org(principal, org_id)
        query: dict[str, Any] = {"sending_org_id": org}
        if mine:
            query["sending_doctor_id"] = principal.subject
        if status:
            query["status"] = status
        return await self._list(principal, query, "outgoing_list", org, limit)

    async def for_patient(self, patient_ids: set[str], limit: int) -> list[dict[str, Any]]:
        cursor = self.db[CASES].find({"patient_id": {"$in": sorted(patient_ids)}})
        return [patient_view(d) async for d in cursor.sort("created_at", -1).limit(limit)]

    async def of_patient(
        self, principal: Principal, patient_id: str, *, reason: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """A patient's cases as staff see them on the patient's page: those the caller's
        organization referred or holds now (every one for the alliance admin), newest
        first. 404 for a patient referrals does not know; 403 ``forbidden_org`` for a
        patient who is none of the organization's (``KnownPatients.known_at``). Audited."""
        if not await self.patients.exists(patient_id):
            raise NotFound("patient_not_found", "no such patient", detail_zh="患者不存在")
        query: dict[str, Any] = {"patient_id": patient_id}
        if not sees_every_org(principal):
            own = org_filter(principal) or ""
            if not await self.patients.known_at(patient_id, own):
                raise other_org()
            query["$or"] = [{"sending_org_id": own}, {"receiving_org_id": own}]
        cursor = self.db[CASES].find(query).sort([("created_at", -1), ("_id", -1)]).limit(limit)
        items = [_patient_summary(d) async for d in cursor]
        await self.audit.record(
            principal,
            "referral.patient_list",
            patient_id=patient_id,
            resource=f"patient:{patient_id}",
            reason=reason,
            details={"count": len(items)},
            org_id=principal.org_id,
        )
        return items

    async def figures(
        self,
        principal: Principal,
        *,
        org_id: str | None,
        since: datetime,
        until: datetime,
    ) -> dict[str, Any]:
        """Counts and rates over the cases created in [since, until) that the organization
        sent or received (by direction, and received by department), and how it answered
        the cases offered to it in that period (``offers``: declined ones included)."""
        org = self._org(principal, org_id)
        query = {
            "created_at": {"$gte": since, "$lt": until},
            "$or": [{"sending_org_id": org}, {"receiving_org_id": org}, {"declined_org_ids": org}],
        }
        docs = [d async for d in self.db[CASES].find(query)]
        offers = [
            o
            async for o in self.db[OFFERS].find(
                {"org_id": org, "offered_at": {"$gte": since, "$lt": until}}
            )
        ]
        by_department: dict[str, list[Document]] = defaultdict(list)
        for d in docs:
            if d.get("receiving_org_id") == org:
                by_department[d.get("receiving_department_id") or "untriaged"].append(d)
        return {
            "org_id": org,
            "since": since,
            "until": until,
            "sent": _figures([d for d in docs if d["sending_org_id"] == org], org),
            "received": _figures([d for d in docs if d.get("receiving_org_id") == org], org),
            "offers": _offer_figures(offers),
            "received_by_department": {
                k: _figures(v, org) for k, v in sorted(by_department.items())
            },
        }


def _offer_figures(offers: list[Document]) -> dict[str, Any]:
    """How the organization answered the cases offered to it (declined ones included)."""
    outcomes = Counter(o.get("outcome") or "open" for o in offers)
    answered = sum(outcomes[k] for k in ("accepted", "rejected", "timeout"))
    minutes = [o["minutes"] for o in offers if o.get("outcome") == "accepted"]
    return {
        "offered": len(offers),
        "accepted": outcomes["accepted"],
        "rejected": outcomes["rejected"],
        "timed_out": outcomes["timeout"],
        "open": outcomes["open"],
        "acceptance_rate": round(outcomes["accepted"] / answered, 4) if answered else None,
        "median_minutes_to_accept": round(statistics.median(minutes), 2) if minutes else None,
    }


def _minutes_to_accept(doc: Document) -> float | None:
    accepted = _aware(doc.get("accepted_at"))
    offered = _aware((doc.get("routing") or {}).get("routed_at"))
    if accepted is None or offered is None:
        return None
    return (accepted - offered).total_seconds() / 60


def _figures(docs: list[Document], org: str) -> dict[str, Any]:
    directions = Counter(d["direction"] for d in docs)
    accepted = [d for d in docs if d.get("accepted_at") is not None]
    answered = [d for d in docs if d.get("accepted_at") is not None or d["status"] == "rejected"]
    booked = [d for d in accepted if (d.get("booking") or {}).get("appointment_id")]
    closed = [d for d in docs if d["status"] == TaskStatus.COMPLETED.value]
    minutes = [m for d in accepted if (m := _minutes_to_accept(d)) is not None]
    reroutes = sum(max(0, int((d.get("routing") or {}).get("attempt", 1)) - 1) for d in docs)
    return {
        "total": len(docs),
        "upward": directions.get("upward", 0),
        "downward": directions.get("downward", 0),
        "lateral": directions.get("lateral", 0),
        "acceptance_rate": round(len(accepted) / len(answered), 4) if answered else None,
        "median_minutes_to_accept": round(statistics.median(minutes), 2) if minutes else None,
        "booking_rate": round(len(booked) / len(accepted), 4) if accepted else None,
        "closure_rate": round(len(closed) / len(docs), 4) if docs else None,
        "sla_breaches": sum(
            1 for d in docs if any(h["action"] == "sla_escalated" for h in d["history"])
        ),
        "reroutes": reroutes,
    }
