"""Admission notices (住院证) and each department's bed waiting list.

A doctor issues a notice for a patient of their organization: department, diagnosis
(ICD-10), urgency, expected length of stay, needs (isolation, monitoring), an optional
planned date. The patient is then ``waiting`` in that department's line, ordered by
``domain/bed_rules.py`` (urgency, then waiting time); a bed offer makes the notice
``offered``, a confirmation ``confirmed``, the HIS's admission ``admitted`` (off the
line). A declined or expired offer puts the notice back to ``waiting``. One active notice
per patient and episode (a unique index backs the check: 409 ``admission_notice_exists``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog
from pydantic import BaseModel, Field
from pymongo.errors import DuplicateKeyError

from services.appointments.beds import department_code
from services.appointments.booking_common import Idempotency, remember
from services.appointments.catalog import CODE, Catalog, department_id
from services.appointments.domain import bed_rules
from services.appointments.domain.bed_rules import NoticeFacts, Urgency
from services.appointments.events import AdmissionNoticeIssued
from services.appointments.patients import Patients
from services.appointments.store import ADMISSION_NOTICES, BED_OFFERS
from shared.audit import AuditLog
from shared.events import make_event
from shared.ids import new_id
from shared.mongo import Database, Document, Session
from shared.outbox import Outbox, Tx
from shared.principal import Principal, Role
from shared.privacy import sex_of
from shared.problems import Conflict, Forbidden, NotFound
from shared.scoping import may_see_org, other_org

log = structlog.get_logger(__name__)
ICD10 = r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$"


def not_yours() -> Forbidden:
    return Forbidden(
        "forbidden_patient", "you may not act for this patient", detail_zh="无权操作该就诊人"
    )


class NoticeStatus(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"  # a bed is reserved for the patient until the offer expires
    CONFIRMED = "confirmed"  # the patient confirmed: comes at the offer's time
    ADMITTED = "admitted"  # the HIS admitted the patient
    CANCELLED = "cancelled"


ACTIVE = [NoticeStatus.WAITING.value, NoticeStatus.OFFERED.value, NoticeStatus.CONFIRMED.value]


class Diagnosis(BaseModel):
    code: str = Field(pattern=ICD10, description="ICD-10, e.g. I21.0")
    text: str = Field(min_length=1, max_length=200)


class Needs(BaseModel):
    isolation: bool = False
    monitoring: bool = False


class NoticeIn(BaseModel):
    patient_id: str = Field(min_length=1, max_length=64)
    episode_id: str = Field(min_length=1, max_length=64, description="the HIS episode (visit)")
    department_code: str = Field(pattern=CODE)
    diagnosis: Diagnosis
    urgency: Urgency = Urgency.ROUTINE
    expected_days: int = Field(ge=1, le=365, description="expected length of stay")
    needs: Needs = Needs()
    planned_date: date | None = None  # elective surgery


def notice_not_found() -> NotFound:
    return NotFound(
        "admission_notice_not_found", "no such admission notice", detail_zh="住院证不存在"
    )


def notice_exists(existing: Document | None) -> Conflict:
    return Conflict(
        "admission_notice_exists",
        "the patient already has an active admission notice for this episode",
        detail_zh="该就诊已有有效的住院证",
        extra={"notice_id": existing["_id"] if existing else None},
    )


def facts_of(notice: Document) -> NoticeFacts:
    return NoticeFacts(
        id=notice["_id"],
        department_code=department_code(notice["department_id"]),
        sex=notice["sex"],
        urgency=Urgency(notice["urgency"]),
        issued_at=notice["issued_at"],
        isolation=notice["needs"]["isolation"],
        monitoring=notice["needs"]["monitoring"],
    )


def notice_view(notice: Document) -> dict[str, Any]:
    keys = ("patient_id", "org_id", "department_id", "department_name", "episode_id")
    planned = notice.get("planned_date")
    return {
        "id": notice["_id"],
        **{k: notice[k] for k in keys},
        **{k: notice[k] for k in ("diagnosis", "urgency", "expected_days", "needs", "status")},
        "planned_date": planned,
        "issued_at": notice["issued_at"].isoformat(),
        "offer_id": notice.get("offer_id"),
        "bed_id": notice.get("bed_id"),
        "admitted_at": notice["admitted_at"].isoformat() if notice.get("admitted_at") else None,
    }


class AdmissionNotices:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        catalog: Catalog,
        patients: Patients,
        audit: AuditLog,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.catalog = catalog
        self.patients = patients
        self.audit = audit

    async def issue(
        self, principal: Principal, body: NoticeIn, idempotency: Idempotency | None = None
    ) -> dict[str, Any]:
        org_id = principal.org_id
        if org_id is None:
            raise other_org()
        department = await self.catalog.department(department_id(org_id, body.department_code))
        patient = await self.patients.get_for(principal, body.patient_id, at_org=org_id)
        sex = patient.get("sex") or sex_of(self.patients.reveal_national_id(patient))
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        accounts = patient.get("account_ids") or [None]
        notice: Document = {
            "_id": new_id(),
            "org_id": org_id,
            "department_id": department["_id"],
            "department_name": department["name"],
            "patient_id": patient["_id"],
            "account_id": accounts[0],
            "sex": sex,
            **body.model_dump(mode="json", exclude={"patient_id", "department_code"}),
            "status": NoticeStatus.WAITING.value,
            "active": True,
            "issued_at": now,
            "issued_by": {"id": principal.subject, "role": principal.primary_role},
            "version": 1,
        }
        here = {"patient_id": patient["_id"], "episode_id": body.episode_id, "active": True}

        async def work(tx: Tx) -> dict[str, Any]:
            existing = await self.db[ADMISSION_NOTICES].find_one(here, session=tx.session)
            if existing is not None:
                raise notice_exists(existing)
            try:
                await self.db[ADMISSION_NOTICES].insert_one(notice, session=tx.session)
            except DuplicateKeyError:
                raise notice_exists(None) from None
            issued = AdmissionNoticeIssued(
                notice_id=notice["_id"],
                patient_id=patient["_id"],
                account_id=notice["account_id"],
                org_id=org_id,
                department_id=department["_id"],
                department_name=department["name"],
                urgency=body.urgency.value,
                expected_days=body.expected_days,
                planned_date=body.planned_date,
            )
            tx.emit(make_event(issued, source="appointments", subject=patient["_id"]))
            await self.audit.record(
                principal,
                "admission_notice.issue",
                patient_id=patient["_id"],
                resource=f"admission_notice:{notice['_id']}",
                session=tx.session,
            )
            view = await self.view(notice, tx.session)
            await remember(idempotency, 201, view, tx.session)
            return view

        view = await self.outbox.transaction(work)
        log.info("admission_notice.issued", notice_id=notice["_id"], org_id=org_id)
        return view

    async def get(self, notice_id: str, session: Session | None = None) -> Document:
        notice = await self.db[ADMISSION_NOTICES].find_one({"_id": notice_id}, session=session)
        if notice is None:
            raise notice_not_found()
        return notice

    async def owned(self, principal: Principal, notice_id: str) -> Document:
        """The notice, if the caller may see it: staff and services of its organization
        (403 otherwise), the accounts managing its patient (else it looks missing)."""
        notice = await self.get(notice_id)
        if principal.is_staff or Role.SERVICE in principal.roles:
            if may_see_org(principal, notice["org_id"]):
                return notice
            raise other_org()
        patient = await self.patients.get(notice["patient_id"])
        if principal.subject in patient.get("account_ids", []):
            return notice
        raise not_yours()

    async def waiting(self, org_id: str, dep_id: str | None = None) -> list[Document]:
        """The waiting notices of an organization (of one department if given)."""
        query: dict[str, Any] = {"org_id": org_id, "status": NoticeStatus.WAITING.value}
        if dep_id is not None:
            query["department_id"] = dep_id
        return await self.db[ADMISSION_NOTICES].find(query).to_list(5000)

    async def position(self, notice: Document, session: Session | None = None) -> int | None:
        if notice["status"] != NoticeStatus.WAITING:
            return None
        query = {
            "org_id": notice["org_id"],
            "department_id": notice["department_id"],
            "status": NoticeStatus.WAITING.value,
        }
        line = await self.db[ADMISSION_NOTICES].find(query, session=session).to_list(5000)
        return bed_rules.position_of(facts_of(notice), [facts_of(n) for n in line])

    async def estimated_wait(self, notice: Document, position: int | None) -> timedelta | None:
        if position is None:
            return None
        since = datetime.now(UTC) - timedelta(days=bed_rules.ESTIMATE_WINDOW_DAYS)
        query = {
            "org_id": notice["org_id"],
            "department_id": notice["department_id"],
            "admitted_at": {"$gte": since},
        }
        docs = await self.db[ADMISSION_NOTICES].find(query, {"admitted_at": 1}).to_list(1000)
        return bed_rules.estimated_wait(position, [d["admitted_at"] for d in docs])

    async def view(self, notice: Document, session: Session | None = None) -> dict[str, Any]:
        """The notice with its place in line, the estimated wait and the open offer."""
        position = await self.position(notice, session)
        wait = await self.estimated_wait(notice, position)
        offer = None
        if notice.get("offer_id") and notice["status"] in (
            NoticeStatus.OFFERED,
            NoticeStatus.CONFIRMED,
        ):
            found = await self.db[BED_OFFERS].find_one({"_id": notice["offer_id"]}, session=session)
            offer = offer_view(found) if found else None
        return {
            **notice_view(notice),
            "position": position,
            "estimated_wait_hours": round(wait.total_seconds() / 3600, 1) if wait else None,
            "offer": offer,
        }

    async def of_account(self, account_id: str, limit: int = 50) -> list[dict[str, Any]]:
        ids = [p["_id"] for p in await self.patients.for_account(account_id)]
        query = {"patient_id": {"$in": ids}}
        docs = await self.db[ADMISSION_NOTICES].find(query).sort("_id", -1).to_list(limit)
        return [await self.view(d) for d in docs]


def offer_view(offer: Document) -> dict[str, Any]:
    keys = ("notice_id", "patient_id", "org_id", "ward_id", "bed_id", "status", "what_to_bring")
    return {
        "id": offer["_id"],
        **{k: offer[k] for k in keys},
        "ward": offer["ward_name"],
        "bed": offer["bed_label"],
        "borrowed": offer["borrowed"],
        "come_at": offer["come_at"].isoformat(),
        "offer_expires_at": offer["expires_at"].isoformat(),
    }
