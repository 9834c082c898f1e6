"""Complaints under first-receiver responsibility (首诉负责制): raising one, the commands
on it, and its escalation at the deadline. The rules are ``domain/complaint.py``'s.

* **Raise.** A patient account raises one at an organization (channel ``patient_api``);
  it is owned by the organization's complaint desk (``complaint_settings.py``). Staff of
  the organization take one on the hotline, at the counter or by letter and own it
  themselves. Alliance admins and services raise one for an organization (the desk owns
  it); only a service may say when it was received (``received_at``: a letter, an import).
  The deadline follows the organization's settings in the hospital's time zone.
* **Commands.** Each names the version it read (``If-Match``: 428 without, 412 when
  stale); ownership (403 ``not_complaint_owner``) and the status (409
  ``invalid_transition``) are checked first; a refusal writes nothing. Each change is
  kept in ``history`` and audited. Resolve and close emit ``followup.complaint.resolved``.
* **Escalation.** One keyed job per complaint (``followup.complaint_escalate``) falls due
  at the next escalation; it raises the level (``followup.complaint.escalated``) and
  schedules the next one. A re-run finds the level reached and changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import structlog
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pymongo import ReturnDocument

from services.followup.complaint_access import (
    check_version,
    complainant_patients,
    is_patient_account,
    stale,
)
from services.followup.complaint_records import (
    ESCALATE_JOB,
    complaint_not_found,
    escalate_job_key,
    facts,
    history_entry,
    state_fields,
    state_of,
)
from services.followup.complaint_settings import ComplaintSettings
from services.followup.domain.complaint import (
    Actor,
    Category,
    Channel,
    Close,
    Command,
    ComplaintDeadlines,
    ComplaintState,
    Complexity,
    Resolve,
    Severity,
    apply,
    ensure_may_act,
    ensure_transition,
    escalate,
    next_escalation_at,
    receive,
)
from services.followup.events import ComplaintEscalated, ComplaintOpened, ComplaintResolved
from services.followup.patients import KnownPatients
from services.followup.settings import FollowupSettings
from services.followup.store import COMPLAINTS
from shared.audit import AuditLog
from shared.auth import ensure_patient_access
from shared.events import make_event
from shared.ids import new_id
from shared.jobs import Job, cancel_job, schedule_job
from shared.mongo import Database, Document, Session
from shared.outbox import Outbox, Tx
from shared.principal import Principal, Role
from shared.problems import Unprocessable
from shared.scoping import ensure_org, sees_every_org

log = structlog.get_logger(__name__)

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
MISSED = {1: "feedback_deadline", 2: "department_escalation"}


class PersonInvolved(BaseModel):
    """Someone the complaint is about: a role and a name or a staff id."""

    model_config = ConfigDict(extra="forbid")
    role: str = Field(min_length=1, max_length=32, description="e.g. doctor, nurse, cashier")
    name: str | None = Field(None, min_length=1, max_length=64)
    staff_id: str | None = Field(None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _named(self) -> PersonInvolved:
        if self.name is None and self.staff_id is None:
            raise ValueError("give the person's name or staff id")
        return self


class ComplaintIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org_id: Id | None = Field(None, description="required for patients and alliance callers")
    patient_id: Id | None = None
    channel: Channel | None = Field(None, description="staff: hotline, counter or letter")
    category: Category
    severity: Severity = Severity.MEDIUM
    complexity: Complexity = Complexity.INVESTIGATION
    departments_involved: list[Id] = Field(default_factory=list, max_length=20)
    people_involved: list[PersonInvolved] = Field(default_factory=list, max_length=20)
    description: str = Field(min_length=1, max_length=4000)
    contact_preference: Literal["phone", "message", "none"] = "phone"
    received_at: AwareDatetime | None = Field(None, description="services only")


def _invalid(code: str, detail: str, detail_zh: str) -> Unprocessable:
    return Unprocessable(code, detail, detail_zh=detail_zh)


class Complaints:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        patients: KnownPatients,
        complaint_settings: ComplaintSettings,
        audit: AuditLog,
        settings: FollowupSettings,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.patients = patients
        self.complaint_settings = complaint_settings
        self.audit = audit
        self.tz = settings.hospital_timezone

    # --- raising -------------------------------------------------------------------------

    async def raise_complaint(self, principal: Principal, body: ComplaintIn) -> Document:
        """A new complaint, owned by its first receiver (or the desk); returns it."""
        org_id, channel, owner = await self._receiver(principal, body)
        received_at = datetime.now(UTC)
        if body.received_at is not None:
            if Role.SERVICE not in principal.roles:
                raise _invalid(
                    "received_at_not_allowed",
                    "only services say when a complaint was received",
                    "仅系统对接可指定受理时间",
                )
            received_at = body.received_at.astimezone(UTC)

        async def work(tx: Tx) -> Document:
            found = await self.complaint_settings.of(org_id, tx.session)
            owner_id = owner or found.desk_owner_id
            state = receive(
                org_id=org_id,
                receiver_id=owner_id,
                received_at=received_at,
                complexity=body.complexity,
                departments_involved=body.departments_involved,
                settings=found.deadlines,
                tz=self.tz,
                complainant_patient_id=body.patient_id,
            )
            now = datetime.now(UTC)
            complaint_id = new_id()
            opened = {"channel": channel.value, "owner_id": owner_id}
            doc: Document = {
                "_id": complaint_id,
                **state_fields(state),
                "category": body.category.value,
                "severity": body.severity.value,
                "channel": channel.value,
                "description": body.description,
                "people_involved": [p.model_dump() for p in body.people_involved],
                "contact_preference": body.contact_preference,
                "complainant_account_id": principal.subject
                if channel is Channel.PATIENT_API
                else None,
                "raised_by": principal.subject,
                "history": [
                    {"type": "received", "actor_id": principal.subject, "at": now, "data": opened}
                ],
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
            await self.db[COMPLAINTS].insert_one(doc, session=tx.session)
            await self._schedule(tx.session, complaint_id, state, found.deadlines)
            payload = ComplaintOpened(**facts(doc), channel=channel.value, receiver_id=owner_id)
            tx.emit(make_event(payload, source="followup", subject=complaint_id))
            await self._audit(principal, doc, "raise", tx.session)
            return doc

        doc = await self.outbox.transaction(work)
        log.info(
            "followup.complaint.opened",
            complaint_id=doc["_id"],
            org_id=org_id,
            owner_id=doc["owner_id"],
        )
        return doc

    async def _receiver(
        self, principal: Principal, body: ComplaintIn
    ) -> tuple[str, Channel, str | None]:
        """The organization, the channel and the owner (None: the organization's desk)."""
        if is_patient_account(principal):
            if body.channel not in (None, Channel.PATIENT_API):
                raise _invalid("channel_invalid", "patients raise through the API", "渠道无效")
            if body.org_id is None:
                raise _invalid("org_id_required", "name the organization", "请指定医疗机构")
            if body.patient_id is not None and not (
                body.patient_id in principal.patient_ids
                or await self.patients.manages(principal.subject, body.patient_id)
            ):
                ensure_patient_access(principal, body.patient_id)
            return body.org_id, Channel.PATIENT_API, None
        if body.channel is Channel.PATIENT_API:
            raise _invalid("channel_invalid", "staff take hotline, counter or letters", "渠道无效")
        if sees_every_org(principal):
            if body.org_id is None:
                raise _invalid("org_id_required", "name the organization", "请指定医疗机构")
            return body.org_id, body.channel or Channel.LETTER, None
        org_id = body.org_id or principal.org_id
        ensure_org(principal, org_id)
        assert org_id is not None  # ensure_org refuses staff without an organization
        default = Channel.HOTLINE if Role.AGENT in principal.roles else Channel.COUNTER
        return org_id, body.channel or default, principal.subject

    # --- commands ------------------------------------------------------------------------

    async def act(
        self,
        principal: Principal,
        complaint_id: str,
        if_match: str | None,
        command: Command,
        *,
        relabel: dict[str, str] | None = None,
        reason: str | None = None,
    ) -> Document:
        """Apply ``command`` (``relabel``: a new category or severity, on reclassify)."""

        async def work(tx: Tx) -> Document:
            doc = await self.db[COMPLAINTS].find_one({"_id": complaint_id}, session=tx.session)
            if doc is None:
                raise complaint_not_found(complaint_id)
            actor = await self._actor(principal, doc)
            state = state_of(doc)
            ensure_may_act(state, actor, command)
            ensure_transition(state.status, command)
            check_version(if_match, doc["version"])
            deadlines = (await self.complaint_settings.of(doc["org_id"], tx.session)).deadlines
            now = datetime.now(UTC)
            applied = apply(state, actor, command, at=now, settings=deadlines, tz=self.tz)
            changes = {**state_fields(applied.state), **(relabel or {}), "updated_at": now}
            after = await self._write(tx.session, doc, changes, history_entry(applied.event))
            await self._schedule(tx.session, complaint_id, applied.state, deadlines)
            if isinstance(command, Resolve | Close):
                self._emit_resolved(tx, after)
            await self._audit(principal, after, applied.event.type, tx.session, reason=reason)
            return after

        after = await self.outbox.transaction(work)
        log.info(
            "followup.complaint.changed",
            complaint_id=complaint_id,
            actor_id=principal.subject,
            status=after["status"],
            version=after["version"],
        )
        return after

    async def _actor(self, principal: Principal, doc: Document) -> Actor:
        if is_patient_account(principal):
            patient_ids = await complainant_patients(self.patients, principal, doc)
            return Actor(principal.subject, patient_ids=patient_ids)
        ensure_org(principal, doc["org_id"])
        return Actor(
            principal.subject,
            org_id=principal.org_id,
            is_admin=Role.ADMIN in principal.roles,
            is_alliance_admin=sees_every_org(principal),
        )

    async def _write(
        self, session: Session, doc: Document, changes: dict[str, Any], entry: dict[str, Any]
    ) -> Document:
        after = await self.db[COMPLAINTS].find_one_and_update(
            {"_id": doc["_id"], "version": doc["version"]},
            {"$set": changes, "$push": {"history": entry}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if after is None:  # changed under us (the transaction conflicts first, normally)
            raise stale(doc["version"] + 1)
        return after

    def _emit_resolved(self, tx: Tx, doc: Document) -> None:
        payload = ComplaintResolved(
            **facts(doc),
            resolution=doc.get("resolution") or "",
            handling_satisfaction=doc.get("satisfaction"),
            unreachable=bool(doc.get("closed_unreachable")),
        )
        tx.emit(make_event(payload, source="followup", subject=doc["_id"]))

    # --- escalation ----------------------------------------------------------------------

    async def escalate_due(self, job: Job, tx: Tx) -> None:
        """The ``followup.complaint_escalate`` job: raise the level that is due, if any,
        and schedule the next one."""
        complaint_id = job.payload["complaint_id"]
        doc = await self.db[COMPLAINTS].find_one({"_id": complaint_id}, session=tx.session)
        if doc is None:
            return
        deadlines = (await self.complaint_settings.of(doc["org_id"], tx.session)).deadlines
        state = state_of(doc)
        applied = escalate(state, datetime.now(UTC), deadlines, self.tz)
        if applied is not None:
            state = applied.state
            changes = {**state_fields(state), "updated_at": applied.event.at}
            after = await self._write(tx.session, doc, changes, history_entry(applied.event))
            level = int(state.escalation_level)
            payload = ComplaintEscalated(
                **facts(after), missed=MISSED[level], from_level=int(doc["escalation_level"])
            )
            tx.emit(make_event(payload, source="followup", subject=complaint_id))
            log.info("followup.complaint.escalated", complaint_id=complaint_id, level=level)
        await self._schedule(tx.session, complaint_id, state, deadlines)

    async def _schedule(
        self, session: Session, complaint_id: str, state: ComplaintState, d: ComplaintDeadlines
    ) -> None:
        """Schedule (or move) the complaint's escalation job; cancel it when none is due."""
        key = escalate_job_key(complaint_id)
        due = next_escalation_at(state, d, self.tz)
        if due is None:
            await cancel_job(self.db, session, key)
            return
        await schedule_job(
            self.db,
            session,
            kind=ESCALATE_JOB,
            due_at=max(due, datetime.now(UTC)),
            payload={"complaint_id": complaint_id},
            key=key,
        )

    async def _audit(
        self,
        principal: Principal,
        doc: Document,
        what: str,
        session: Session,
        *,
        reason: str | None = None,
    ) -> None:
        await self.audit.record(
            principal,
            f"followup.complaint.{what}",
            patient_id=doc.get("patient_id"),
            resource=f"complaint:{doc['_id']}",
            reason=reason,
            org_id=doc["org_id"],
            session=session,
        )
