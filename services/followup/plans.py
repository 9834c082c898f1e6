"""Follow-up plans: made from a discharge or a completed downward referral, by the template
that fits (``domain/plan_template.py``), as tasks with due times in hospital local time.

One plan per source (``plans.one_per_source``): a discharge told twice, or over two
channels, plans once. Each task falls due through a timed job keyed by the task
(``followup.task_due``), so it is made due once across replicas. A plan ends early when the
patient is readmitted or dies: its open tasks are cancelled and agents see why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.followup.domain.plan_template import StepKind, Template, choose, due_at
from services.followup.events import PlanCreated, PlanEnded
from services.followup.settings import FollowupSettings
from services.followup.store import PLANS, TASKS
from services.followup.templates import PlanTemplates
from shared.audit import AuditLog
from shared.domain_errors import Conflict, NotFound
from shared.events import make_event
from shared.ids import new_id
from shared.jobs import cancel_job, schedule_job
from shared.mongo import Database, Document, Session
from shared.outbox import Tx
from shared.principal import Principal, Role
from shared.scoping import ensure_org, org_filter

TASK_DUE_JOB = "followup.task_due"
OPEN_TASK = ["scheduled", "due", "waiting"]  # not yet finished
END_REASONS = ("readmitted", "deceased", "cancelled")


def task_job_key(task_id: str) -> str:
    return f"followup-task:{task_id}"


@dataclass(frozen=True)
class PlanStart:
    patient_id: str
    org_id: str
    source: str  # "discharge" / "referral"
    source_id: str
    started_at: datetime  # the discharge (or the referral's completion)
    department_id: str | None = None
    doctor_id: str | None = None
    diagnosis_codes: Sequence[str] = field(default_factory=tuple)
    note: str | None = None


def plan_not_found(plan_id: str) -> NotFound:
    return NotFound("plan_not_found", f"no follow-up plan {plan_id!r}", detail_zh="随访计划不存在")


class Plans:
    def __init__(
        self, db: Database, templates: PlanTemplates, audit: AuditLog, settings: FollowupSettings
    ) -> None:
        self.db = db
        self.templates = templates
        self.audit = audit
        self.settings = settings

    async def start(self, tx: Tx, start: PlanStart, template: Template | None = None) -> str:
        """Make the plan and its tasks (once per source); returns the plan's id."""
        existing = await self.db[PLANS].find_one(
            {"source": start.source, "source_id": start.source_id}, {"_id": 1}, session=tx.session
        )
        if existing:
            return str(existing["_id"])
        if template is None:
            candidates = await self.templates.active_for(start.org_id, tx.session)
            template = choose(
                candidates,
                org_id=start.org_id,
                department_id=start.department_id,
                diagnosis_codes=start.diagnosis_codes,
            )
        now = datetime.now(UTC)
        plan_id = new_id()
        tasks = self._tasks(plan_id, start, template, now)
        await self.db[PLANS].insert_one(
            {
                "_id": plan_id,
                "patient_id": start.patient_id,
                "org_id": start.org_id,
                "department_id": start.department_id,
                "doctor_id": start.doctor_id,
                "source": start.source,
                "source_id": start.source_id,
                "diagnosis_codes": list(start.diagnosis_codes),
                "note": start.note,
                "template": {"id": template.template_id, "version": template.version},
                "template_name": template.body.name,
                "started_at": start.started_at,
                "status": "active",
                "risk_level": "none",
                "created_at": now,
                "version": 1,
            },
            session=tx.session,
        )
        await self.db[TASKS].insert_many(tasks, session=tx.session)
        for task in tasks:
            fire_at = task["due_at"]
            if task["kind"] == StepKind.REVISIT:  # appointments is asked days before the day
                fire_at -= timedelta(days=self.settings.revisit_ask_days_before)
            await schedule_job(
                self.db,
                tx.session,
                kind=TASK_DUE_JOB,
                due_at=max(fire_at, now),
                payload={"task_id": task["_id"]},
                key=task_job_key(task["_id"]),
            )
        first = start.diagnosis_codes[0] if start.diagnosis_codes else None
        payload = PlanCreated(
            plan_id=plan_id,
            patient_id=start.patient_id,
            org_id=start.org_id,
            department_id=start.department_id,
            doctor_id=start.doctor_id,
            source=start.source,
            template_id=template.template_id,
            template_version=template.version,
            task_count=len(tasks),
            discharged_at=start.started_at if start.source == "discharge" else None,
            diagnosis_code=first,
        )
        tx.emit(make_event(payload, source="followup", subject=start.patient_id))
        return plan_id

    def _tasks(
        self, plan_id: str, start: PlanStart, template: Template, now: datetime
    ) -> list[Document]:
        zone = self.settings.hospital_timezone
        return [
            {
                "_id": new_id(),
                "plan_id": plan_id,
                "step": index,
                "patient_id": start.patient_id,
                "org_id": start.org_id,
                "department_id": start.department_id,
                "doctor_id": start.doctor_id,
                "kind": step.kind.value,
                "title": step.title,
                "priority": step.priority.value,
                "questionnaire_url": step.questionnaire_url,
                "due_at": due_at(step, start.started_at, zone),
                "status": "scheduled",
                "risk_level": "none",
                "risk_rank": 0,
                "no_answers": 0,
                "attempts": [],
                "claim": None,
                "created_at": now,
                "version": 1,
            }
            for index, step in enumerate(template.body.steps)
        ]

    async def end_for_patient(
        self, tx: Tx, patient_id: str, reason: str, detail: str | None = None
    ) -> list[str]:
        """End every active plan of the patient (readmitted, deceased); returns their ids."""
        cursor = self.db[PLANS].find(
            {"patient_id": patient_id, "status": "active"}, session=tx.session
        )
        ended = []
        async for plan in cursor:
            await self._end(tx, plan, reason, detail)
            ended.append(str(plan["_id"]))
        return ended

    async def end_by_staff(
        self, principal: Principal, plan_id: str, reason: str, detail: str | None, tx: Tx
    ) -> Document:
        plan = await self.db[PLANS].find_one({"_id": plan_id}, session=tx.session)
        if plan is None:
            raise plan_not_found(plan_id)
        ensure_org(principal, plan["org_id"])
        if plan["status"] != "active":
            raise Conflict(
                "plan_not_active", f"the plan is {plan['status']}", detail_zh="随访计划已结束"
            )
        await self._end(tx, plan, reason, detail)
        await self.audit.record(
            principal,
            "followup.plan.end",
            patient_id=plan["patient_id"],
            resource=f"plan:{plan_id}",
            reason=detail,
            org_id=plan["org_id"],
            session=tx.session,
            details={"end_reason": reason},
        )
        return await self.get(plan_id, tx.session)

    async def _end(self, tx: Tx, plan: Document, reason: str, detail: str | None) -> None:
        now = datetime.now(UTC)
        await self.db[PLANS].update_one(
            {"_id": plan["_id"], "status": "active"},
            {
                "$set": {
                    "status": "ended",
                    "end_reason": reason,
                    "end_detail": detail,
                    "ended_at": now,
                },
                "$inc": {"version": 1},
            },
            session=tx.session,
        )
        async for task in self.db[TASKS].find(
            {"plan_id": plan["_id"], "status": {"$in": OPEN_TASK}}, {"_id": 1}, session=tx.session
        ):
            await cancel_job(self.db, tx.session, task_job_key(task["_id"]))
        await self.db[TASKS].update_many(
            {"plan_id": plan["_id"], "status": {"$in": OPEN_TASK}},
            {
                "$set": {"status": "cancelled", "cancel_reason": reason, "claim": None},
                "$inc": {"version": 1},
            },
            session=tx.session,
        )
        payload = PlanEnded(**_facts(plan), reason=reason, detail=detail)
        tx.emit(make_event(payload, source="followup", subject=plan["patient_id"]))

    async def complete_if_done(self, tx: Tx, plan_id: str) -> None:
        """A plan whose tasks are all finished is completed."""
        open_left = await self.db[TASKS].count_documents(
            {"plan_id": plan_id, "status": {"$in": [*OPEN_TASK, "unreachable"]}},
            limit=1,
            session=tx.session,
        )
        if open_left:
            return
        plan = await self.db[PLANS].find_one_and_update(
            {"_id": plan_id, "status": "active"},
            {
                "$set": {"status": "completed", "ended_at": datetime.now(UTC)},
                "$inc": {"version": 1},
            },
            session=tx.session,
        )
        if plan is not None:
            payload = PlanEnded(**_facts(plan), reason="completed")
            tx.emit(make_event(payload, source="followup", subject=plan["patient_id"]))

    async def raise_risk(self, tx: Tx, plan_id: str, level: str, rank: int) -> None:
        """The plan (and its open tasks, for the call list's order) carry its highest risk."""
        await self.db[PLANS].update_one(
            {"_id": plan_id, "risk_rank": {"$not": {"$gte": rank}}},
            {"$set": {"risk_level": level, "risk_rank": rank}},
            session=tx.session,
        )
        await self.db[TASKS].update_many(
            {"plan_id": plan_id, "risk_rank": {"$lt": rank}},
            {"$set": {"risk_level": level, "risk_rank": rank}},
            session=tx.session,
        )

    async def get(self, plan_id: str, session: Session | None = None) -> Document:
        plan = await self.db[PLANS].find_one({"_id": plan_id}, session=session)
        if plan is None:
            raise plan_not_found(plan_id)
        return plan

    async def view_for(self, principal: Principal, plan_id: str, reason: str | None) -> Document:
        """A plan with its tasks, for staff of its organization (audited)."""
        plan = await self.get(plan_id)
        ensure_org(principal, plan["org_id"])
        tasks = await self.db[TASKS].find({"plan_id": plan_id}, sort=[("step", 1)]).to_list(None)
        await self.audit.record(
            principal,
            "followup.plan.read",
            patient_id=plan["patient_id"],
            resource=f"plan:{plan_id}",
            reason=reason,
            org_id=plan["org_id"],
        )
        return {**plan_view(plan), "tasks": [task_view(t) for t in tasks]}

    async def for_patient(self, principal: Principal, patient_id: str) -> list[Document]:
        """The patient's plans: a patient account sees them all, staff their organization's."""
        query: dict[str, Any] = {"patient_id": patient_id}
        org = None if principal.has_any(Role.PATIENT) else org_filter(principal)
        if org is not None:
            query["org_id"] = org
        plans = await self.db[PLANS].find(query, sort=[("created_at", -1)]).to_list(100)
        return [plan_view(p) for p in plans]


def _facts(plan: Document) -> dict[str, Any]:
    return {
        "plan_id": plan["_id"],
        "patient_id": plan["patient_id"],
        "org_id": plan["org_id"],
        "department_id": plan.get("department_id"),
        "doctor_id": plan.get("doctor_id"),
    }


PLAN_KEYS = (
    "patient_id",
    "org_id",
    "department_id",
    "doctor_id",
    "source",
    "source_id",
    "diagnosis_codes",
    "note",
    "template",
    "template_name",
    "started_at",
    "status",
    "end_reason",
    "end_detail",
    "ended_at",
    "risk_level",
    "created_at",
    "version",
)
TASK_KEYS = (
    "plan_id",
    "step",
    "patient_id",
    "org_id",
    "department_id",
    "kind",
    "title",
    "priority",
    "questionnaire_url",
    "due_at",
    "status",
    "cancel_reason",
    "risk_level",
    "no_answers",
    "attempts",
    "claim",
    "outcome",
    "response_id",
    "revisit_request_id",
    "revisit",
    "version",
)


def plan_view(plan: Document) -> dict[str, Any]:
    return {"plan_id": plan["_id"], **{k: plan.get(k) for k in PLAN_KEYS}}


def task_view(task: Document) -> dict[str, Any]:
    return {"task_id": task["_id"], **{k: task.get(k) for k in TASK_KEYS}}
