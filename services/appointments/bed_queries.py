"""What bed managers and admins read: the bed desk's list of admission notices (waiting
for a bed, or offered one), candidates (the beds that fit a notice, or the waiting patients
a bed fits, best first) and the figures of a period.

Figures (``since`` ≤ admitted_at < ``until``), per department: the wait for a bed (issued
→ admitted) in hours, average and 90th percentile (nearest rank), also per urgency;
admissions; borrowed beds (admissions to another department's ward, 借床); occupancy now
(occupied or reserved beds over the beds not blocked) and turnover (admissions per bed in
use over the period).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from services.appointments.admission_notices import (
    AdmissionNotices,
    NoticeStatus,
    facts_of,
    notice_view,
)
from services.appointments.beds import Beds, bed_view, department_code
from services.appointments.catalog import department_id
from services.appointments.domain import bed_rules
from services.appointments.store import ADMISSION_NOTICES, BED_OFFERS, BEDS, PATIENTS
from shared.mongo import Database, Document
from shared.principal import Principal
from shared.privacy import mask_name
from shared.scoping import ensure_org

LISTED = (NoticeStatus.WAITING, NoticeStatus.OFFERED, NoticeStatus.CONFIRMED)
LIST_LIMIT = 1000


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


def _waits(docs: list[Document]) -> dict[str, Any]:
    waits = [float(d.get("wait_seconds", 0.0)) for d in docs]
    return {
        "admissions": len(docs),
        "average_wait_hours": _hours(bed_rules.average(waits)),
        "p90_wait_hours": _hours(bed_rules.percentile(waits, 90)),
    }


def _listed(
    notice: Document, names: dict[str, str], offers: dict[str, Document], now: datetime
) -> dict[str, Any]:
    issued: datetime = notice["issued_at"]
    offer = offers.get(notice.get("offer_id") or "")
    return {
        "id": notice["_id"],
        "patient_id": notice["patient_id"],
        "patient_name_masked": names.get(notice["patient_id"]),
        "department_id": notice["department_id"],
        "department_code": department_code(notice["department_id"]),
        "department_name": notice["department_name"],
        "urgency": notice["urgency"],
        "diagnosis": notice["diagnosis"],
        "needs": notice["needs"],
        "expected_days": notice["expected_days"],
        "planned_date": notice.get("planned_date"),
        "status": notice["status"],
        "issued_at": issued.isoformat(),
        "waited_minutes": max(0, int((now - issued).total_seconds() // 60)),
        "offer": None
        if offer is None or notice["status"] == NoticeStatus.WAITING
        else {
            "id": offer["_id"],
            "status": offer["status"],
            "bed_id": offer["bed_id"],
            "bed": offer["bed_label"],
            "ward": offer["ward_name"],
            "borrowed": offer["borrowed"],
            "come_at": offer["come_at"].isoformat(),
            "expires_at": offer["expires_at"].isoformat(),
        },
    }


class BedQueries:
    def __init__(self, db: Database, beds: Beds, notices: AdmissionNotices) -> None:
        self.db = db
        self.beds = beds
        self.notices = notices

    async def notice_list(
        self, org_id: str, statuses: list[NoticeStatus], dep_code: str | None = None
    ) -> list[dict[str, Any]]:
        """The bed desk's list: the organization's notices in ``statuses`` (of one
        department if given), urgency first then the longest wait, each with the patient's
        masked name, the minutes waited since issue and the open offer (if any)."""
        query: dict[str, Any] = {"org_id": org_id, "status": {"$in": [s.value for s in statuses]}}
        if dep_code is not None:
            query["department_id"] = department_id(org_id, dep_code)
        docs = await self.db[ADMISSION_NOTICES].find(query).to_list(LIST_LIMIT)
        by_id = {d["_id"]: d for d in docs}
        ranked = [by_id[f.id] for f in bed_rules.rank(facts_of(d) for d in docs)]
        patient_ids = sorted({d["patient_id"] for d in docs})
        names = {
            p["_id"]: mask_name(p["name"])
            async for p in self.db[PATIENTS].find({"_id": {"$in": patient_ids}}, {"name": 1})
            if p.get("name")
        }
        offer_ids = [d.get("offer_id") for d in docs if d["status"] != NoticeStatus.WAITING]
        wanted = {"_id": {"$in": [i for i in offer_ids if i]}}
        offers = {o["_id"]: o async for o in self.db[BED_OFFERS].find(wanted)}
        now = datetime.now(UTC)
        return [_listed(d, names, offers, now) for d in ranked]

    async def beds_for_notice(self, principal: Principal, notice_id: str) -> dict[str, Any]:
        notice = await self.notices.get(notice_id)
        ensure_org(principal, notice["org_id"])
        policy = await self.beds.policy(notice["org_id"])
        free = await self.beds.free_beds(notice["org_id"])
        by_id = {doc["_id"]: doc for doc, _ in free}
        ranked = bed_rules.beds_for_notice(facts_of(notice), [f for _, f in free], policy)
        items = [
            {**bed_view(by_id[f.id]), "borrowed": bed_rules.is_borrowed(facts_of(notice), f)}
            for f in ranked
        ]
        return {"notice": notice_view(notice), "beds": items, "patients": []}

    async def patients_for_bed(self, principal: Principal, bed_id: str) -> dict[str, Any]:
        bed = await self.beds.get_for(principal, bed_id)
        facts = await self.beds.facts(bed)
        policy = await self.beds.policy(bed["org_id"])
        waiting = await self.notices.waiting(bed["org_id"])
        by_id = {n["_id"]: n for n in waiting}
        ranked = bed_rules.candidates_for_bed(facts, [facts_of(n) for n in waiting], policy)
        items = [notice_view(by_id[f.id]) for f in ranked]
        return {"notice": None, "beds": [], "patients": items}

    async def figures(self, org_id: str, since: datetime, until: datetime) -> dict[str, Any]:
        query = {"org_id": org_id, "admitted_at": {"$gte": since, "$lt": until}}
        admitted = await self.db[ADMISSION_NOTICES].find(query).to_list(100_000)
        fields = {"status": 1, "department_id": 1}
        bed_docs = await self.db[BEDS].find({"org_id": org_id}, fields).to_list(100_000)
        by_dep: dict[str, list[Document]] = defaultdict(list)
        for doc in admitted:
            by_dep[doc["department_id"]].append(doc)
        beds_by_dep: dict[str, list[str]] = defaultdict(list)
        for bed in bed_docs:
            beds_by_dep[bed["department_id"]].append(bed["status"])
        departments = []
        for dep in sorted(set(by_dep) | set(beds_by_dep)):
            docs, statuses = by_dep.get(dep, []), beds_by_dep.get(dep, [])
            usable = sum(1 for s in statuses if s != bed_rules.BedStatus.BLOCKED)
            by_urgency: dict[str, list[Document]] = defaultdict(list)
            for doc in docs:
                by_urgency[doc["urgency"]].append(doc)
            occupancy = bed_rules.occupancy(statuses)
            turnover = bed_rules.turnover(len(docs), usable)
            departments.append(
                {
                    "department_id": dep,
                    **_waits(docs),
                    "by_urgency": {u: _waits(d) for u, d in sorted(by_urgency.items())},
                    "borrowed_beds": sum(1 for d in docs if d.get("borrowed")),
                    "beds": len(statuses),
                    "occupancy": None if occupancy is None else round(occupancy, 3),
                    "turnover": None if turnover is None else round(turnover, 3),
                }
            )
        return {
            "org_id": org_id,
            "since": since.isoformat(),
            "until": until.isoformat(),
            **_waits(admitted),
            "borrowed_beds": sum(1 for d in admitted if d.get("borrowed")),
            "occupancy": bed_rules.occupancy(b["status"] for b in bed_docs),
            "departments": departments,
        }
