"""Referral cases: submission, who may see a case, and its views.

Who sees a case (docs/adr/0006-referrals.md): staff of the referring organization and of
the organization it is routed to now (``shared.scoping``), alliance admins and services,
and the patient's own account (read only). Staff reads are audited. Anyone else gets
404 for a case of a patient they do not manage and 403 ``forbidden_org`` for a case of
organizations they do not belong to.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.referrals.case_changes import actor, facts
from services.referrals.case_routing import CaseRouting
from services.referrals.directory import Directory
from services.referrals.domain.case import ReferralIn, check_consent
from services.referrals.domain.routing import Candidate
from services.referrals.domain.workflow import BusinessStatus, Side, TaskStatus
from services.referrals.events import ReferralSubmitted
from services.referrals.patients import KnownPatients
from services.referrals.routing import Routing
from services.referrals.store import CASES
from shared.audit import AuditLog
from shared.domain_errors import Conflict, Forbidden, Invalid, NotFound
from shared.events import make_event
from shared.ids import new_id
from shared.mongo import Database, Document, Session
from shared.outbox import Outbox, Tx
from shared.principal import Principal, Role
from shared.scoping import may_see_org, other_org

# who writes referrals: the referring doctor, the referral coordinator, the HIS
SUBMITTERS = (Role.DOCTOR, Role.COORDINATOR, Role.SERVICE)


def not_found() -> NotFound:
    return NotFound("referral_not_found", "no such referral", detail_zh="转诊单不存在")


def sides(principal: Principal, doc: Document) -> set[Side]:
    """The sides of the case the caller acts for: its organization's, or both for the HIS."""
    if Role.SERVICE in principal.roles:
        return {Side.SENDER, Side.RECEIVER}
    if not principal.is_staff or principal.org_id is None:
        return set()
    found: set[Side] = set()
    if principal.org_id == doc["sending_org_id"]:
        found.add(Side.SENDER)
    if principal.org_id == doc.get("receiving_org_id"):
        found.add(Side.RECEIVER)
    return found


def may_see(principal: Principal, doc: Document) -> bool:
    return may_see_org(principal, doc["sending_org_id"]) or may_see_org(
        principal, doc.get("receiving_org_id")
    )


class Cases:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        directory: Directory,
        routing: Routing,
        case_routing: CaseRouting,
        patients: KnownPatients,
        audit: AuditLog,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.directory = directory
        self.routing = routing
        self.case_routing = case_routing
        self.patients = patients
        self.audit = audit

    async def get_for(
        self, principal: Principal, referral_id: str, *, reason: str | None = None
    ) -> Document:
        """The case, if the caller may see it (staff reads are audited)."""
        doc = await self.db[CASES].find_one({"_id": referral_id})
        if doc is None:
            raise not_found()
        if principal.is_staff or Role.SERVICE in principal.roles:
            if not may_see(principal, doc):
                raise other_org()
            await self.audit.record(
                principal,
                "referral.read",
                patient_id=doc["patient_id"],
                resource=f"referral:{referral_id}",
                reason=reason,
                org_id=principal.org_id,
            )
            return doc
        if not await self.owns(principal, doc):
            raise not_found()
        return doc

    async def owns(self, principal: Principal, doc: Document) -> bool:
        """A patient account that manages the case's patient (the token's patients, or the
        accounts appointments has linked to the patient)."""
        if Role.PATIENT not in principal.roles:
            return False
        patient_id = doc["patient_id"]
        if patient_id in principal.patient_ids:
            return True
        return await self.patients.manages(principal.subject, patient_id)

    async def submit(self, principal: Principal, body: ReferralIn) -> Document:
        if not principal.has_any(*SUBMITTERS):
            raise Forbidden(
                "forbidden_role",
                "referrals are written by doctors and referral coordinators",
                detail_zh="仅医生或转诊协调员可发起转诊",
            )
        sending_org_id = self._sending_org(principal, body)
        check_consent(body.consent)
        sender = await self.directory.get(sending_org_id)
        if sender is None:
            raise unknown_org("sending_org_id", sending_org_id)
        if body.preferred_org_id and await self.directory.get(body.preferred_org_id) is None:
            raise unknown_org("preferred_org_id", body.preferred_org_id)
        if not await self.patients.exists(body.patient_id):
            raise Invalid(
                "unknown_patient",
                "no real-name patient with this id (register the patient first)",
                detail_zh="未找到该实名患者",
                extra={"field": "patient_id"},
            )
        await self._check_no_live_case(body.patient_id, body.episode_id)
        now = datetime.now(UTC)
        doc = new_case(body, sending_org_id, principal, now)
        if body.submit:  # refused before anything is written when nobody can take it
            await self._winner(doc, session=None)

        async def work(tx: Tx) -> Document:
            await self.db[CASES].insert_one(doc, session=tx.session)
            if not body.submit:
                return doc
            return await self.send_out(tx, principal, doc, action="route")

        try:
            return await self.outbox.transaction(work)
        except DuplicateKeyError:
            raise live_case_exists(None) from None

    async def send_out(
        self, tx: Tx, principal: Principal, doc: Document, *, action: str = "submit"
    ) -> Document:
        """A new case (or a draft) goes out: ``referral.submitted``, then routed to the best
        candidate (``triage.submit`` for drafts)."""
        winner, candidates, explanation = await self._winner(doc, session=tx.session)
        tx.emit(
            make_event(
                ReferralSubmitted(**facts(doc)), source="referrals", subject=doc["patient_id"]
            )
        )
        return await self.case_routing.send(
            tx, doc, principal, winner, candidates, explanation, action=action, routed_by="router"
        )

    async def _winner(
        self, doc: Document, *, session: Session | None
    ) -> tuple[Candidate, list[Candidate], str]:
        candidates, explanation = await self.routing.rank_for(doc, declined=set(), session=session)
        eligible = [c for c in candidates if c.excluded is None]
        if not eligible:
            raise Invalid(
                "no_eligible_receiver",
                f"no organization of the alliance can take this referral: {explanation}",
                detail_zh="医联体内暂无可接收该转诊的机构",
                extra={"candidates": [c.to_document() for c in candidates]},
            )
        return eligible[0], candidates, explanation

    def _sending_org(self, principal: Principal, body: ReferralIn) -> str:
        if Role.SERVICE in principal.roles:
            if body.sending_org_id is None:
                raise Invalid(
                    "sending_org_required",
                    "the HIS names the referring organization (sending_org_id)",
                    detail_zh="缺少转出机构",
                    extra={"field": "sending_org_id"},
                )
            return body.sending_org_id
        if principal.org_id is None:
            raise other_org()
        if body.sending_org_id not in (None, principal.org_id):
            raise other_org()
        return principal.org_id

    async def _check_no_live_case(self, patient_id: str, episode_id: str) -> None:
        live = await self.db[CASES].find_one(
            {"patient_id": patient_id, "episode_id": episode_id, "live": True}, {"_id": 1}
        )
        if live is not None:
            raise live_case_exists(live["_id"])


def unknown_org(field: str, org_id: str) -> Invalid:
    return Invalid(
        "unknown_organization",
        f"no organization '{org_id}' in the alliance's directory",
        detail_zh="医联体目录中无此机构",
        extra={"field": field},
    )


def live_case_exists(case_id: str | None) -> Conflict:
    return Conflict(
        "live_referral_exists",
        "this patient already has a live referral for this episode; it must be closed, "
        "cancelled or rejected before a new one",
        detail_zh="该患者本次就诊已有进行中的转诊",
        extra={"referral_id": case_id} if case_id else {},
    )


def new_case(
    body: ReferralIn, sending_org_id: str, principal: Principal, now: datetime
) -> Document:
    sending_doctor = body.sending_doctor_id
    if sending_doctor is None and Role.DOCTOR in principal.roles:
        sending_doctor = principal.subject
    status = TaskStatus.DRAFT
    data: dict[str, Any] = body.model_dump(mode="json", exclude={"submit", "sending_org_id"})
    return {
        "_id": new_id(),
        **data,
        "sending_org_id": sending_org_id,
        "sending_doctor_id": sending_doctor,
        "status": status.value,
        "business_status": BusinessStatus.DRAFT.value,
        "live": True,
        "receiving_org_id": None,
        "receiving_department_id": None,
        "routing": {},
        "declined_org_ids": [],
        "due_at": None,
        "escalated": False,
        "booking": None,
        "arrived_at": None,
        "notes": [],
        "summary": None,
        "history": [
            {
                "at": now,
                "by": actor(principal),
                "action": "create",
                "from_status": None,
                "to_status": status.value,
                "business_status": BusinessStatus.DRAFT.value,
                "reason": None,
                "details": {},
            }
        ],
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "accepted_at": None,
        "completed_at": None,
    }
