"""A plan's tasks: falling due (a timed job), claims on the call list, and call attempts.

* **Due.** ``followup.task_due`` fires once per task across replicas (a keyed job). A call
  becomes ``due`` (it shows on the call list); a questionnaire is sent to the patient
  (``questionnaires.py``) and waits for the answer; a revisit asks appointments for one
  (``followup.revisit_requested``) and waits for its reply. A patient who asked not to be
  contacted gets nothing: the task is ``skipped``.
* **Claims.** Claiming holds a due task for one agent for ``claim_minutes`` (a lease in the
  task document, taken by a conditional update); nobody else records on it meanwhile.
* **Attempts.** Each call attempt is recorded with a coded outcome (``domain/calls.py``
  decides what it does: done, try again later, unreachable, end the plan) and may carry
  the questionnaire answers taken on the phone. Everything is audited.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from services.followup.do_not_contact import DoNotContact
from services.followup.domain.calls import (
    Decision,
    Next,
    Outcome,
    OutcomeError,
    RetryPolicy,
    decide,
)
from services.followup.events import TaskCompleted, TaskUnreachable
from services.followup.plans import TASK_DUE_JOB, Plans, task_job_key
from services.followup.revisits import Revisits
from services.followup.settings import FollowupSettings
from services.followup.store import RISK_FLAGS, TASKS
from shared.audit import AuditLog
from shared.domain_errors import Conflict, Invalid, NotFound
from shared.events import make_event
from shared.jobs import Job, schedule_job
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.principal import Principal
from shared.scoping import ensure_org

CHASE_JOB = "followup.questionnaire_chase"

__all__ = [
    "CHASE_JOB",
    "TASK_DUE_JOB",
    "AttemptIn",
    "QuestionnaireDesk",
    "QuestionnaireUnavailable",
    "Tasks",
]


class QuestionnaireUnavailable(Exception):
    """``send_for_task``: the task's questionnaire is unknown (or none is active)."""


class QuestionnaireDesk(Protocol):
    """What tasks need of questionnaires (``questionnaires.py``)."""

    async def send_for_task(self, tx: Tx, task: Document) -> str: ...

    async def answer_for_task(
        self, tx: Tx, principal: Principal, task: Document, answers: Mapping[str, Any]
    ) -> str: ...


@dataclass(frozen=True)
class AttemptIn:
    outcome: Outcome
    notes: str | None = None
    call_back_at: datetime | None = None
    answers: Mapping[str, Any] | None = None  # the questionnaire, asked on the phone


def task_not_found(task_id: str) -> NotFound:
    return NotFound("task_not_found", f"no follow-up task {task_id!r}", detail_zh="随访任务不存在")


def claimed_by_other() -> Conflict:
    return Conflict(
        "task_claimed_by_other",
        "another agent holds this task",
        detail_zh="该任务已被其他坐席领取",
    )


class Tasks:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        plans: Plans,
        revisits: Revisits,
        dnc: DoNotContact,
        audit: AuditLog,
        settings: FollowupSettings,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.plans = plans
        self.revisits = revisits
        self.dnc = dnc
        self.audit = audit
        self.settings = settings
        self.questionnaires: QuestionnaireDesk | None = None  # set by the bootstrap

    @property
    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            retry_after=timedelta(minutes=self.settings.no_answer_retry_minutes),
            max_tries=self.settings.no_answer_max_tries,
        )

    # --- falling due -------------------------------------------------------------------

    async def fire_due(self, job: Job, tx: Tx) -> None:
        task = await self.db[TASKS].find_one(
            {"_id": job.payload["task_id"], "status": "scheduled"}, session=tx.session
        )
        if task is None:
            return  # cancelled (plan ended) or already due
        if await self.dnc.is_set(task["patient_id"], tx.session):
            await self._set(tx, task, {"status": "skipped", "cancel_reason": "do_not_contact"})
            await self.plans.complete_if_done(tx, task["plan_id"])
            return
        if task["kind"] == "questionnaire" and self.questionnaires is not None:
            try:
                response_id = await self.questionnaires.send_for_task(tx, task)
            except QuestionnaireUnavailable:  # an agent asks on the phone instead
                await self._set(tx, task, {"status": "due", "kind": "call"})
                return
            await self._set(tx, task, {"status": "waiting", "response_id": response_id})
            await schedule_job(
                self.db,
                tx.session,
                kind=CHASE_JOB,
                due_at=datetime.now(UTC) + timedelta(days=self.settings.questionnaire_answer_days),
                payload={"task_id": task["_id"]},
                key=f"followup-chase:{task['_id']}",
            )
        elif task["kind"] == "revisit":
            ask = await self.revisits.ask(tx, task, reason="plan", around=task["due_at"])
            await self._set(tx, task, {"status": "waiting", "revisit_request_id": ask})
        else:
            await self._set(tx, task, {"status": "due"})

    async def chase(self, job: Job, tx: Tx) -> None:
        """A questionnaire the patient has not answered goes on the call list: an agent
        asks the questions on the phone."""
        task = await self.db[TASKS].find_one(
            {"_id": job.payload["task_id"], "status": "waiting", "kind": "questionnaire"},
            session=tx.session,
        )
        if task is not None:
            await self._set(tx, task, {"status": "due", "chased": True})

    # --- claims --------------------------------------------------------------------------

    async def get_for(self, principal: Principal, task_id: str) -> Document:
        task = await self.db[TASKS].find_one({"_id": task_id})
        if task is None:
            raise task_not_found(task_id)
        ensure_org(principal, task["org_id"])
        return task

    async def claim(self, principal: Principal, task_id: str, reason: str | None) -> Document:
        task = await self.get_for(principal, task_id)
        now = datetime.now(UTC)
        until = now + timedelta(minutes=self.settings.claim_minutes)
        free = {"$or": [{"claim": None}, {"claim.until": {"$lte": now}}]}
        mine = {"claim.agent_id": principal.subject}
        updated = await self.db[TASKS].find_one_and_update(
            {"_id": task_id, "status": "due", "$or": [free, mine]},
            {
                "$set": {"claim": {"agent_id": principal.subject, "since": now, "until": until}},
                "$inc": {"version": 1},
            },
            return_document=True,
        )
        if updated is None:
            fresh = await self.db[TASKS].find_one({"_id": task_id}) or task
            if fresh["status"] != "due":
                raise _not_due(fresh)
            raise claimed_by_other()
        await self.audit.record(
            principal,
            "followup.task.claim",
            patient_id=task["patient_id"],
            resource=f"task:{task_id}",
            reason=reason,
            org_id=task["org_id"],
        )
        return updated

    async def release(self, principal: Principal, task_id: str) -> Document:
        await self.get_for(principal, task_id)
        updated = await self.db[TASKS].find_one_and_update(
            {"_id": task_id, "claim.agent_id": principal.subject},
            {"$set": {"claim": None}, "$inc": {"version": 1}},
            return_document=True,
        )
        if updated is None:
            raise claimed_by_other()
        return updated

    # --- attempts ------------------------------------------------------------------------

    async def record_attempt(
        self, principal: Principal, task_id: str, attempt: AttemptIn, reason: str | None
    ) -> Document:
        task = await self.get_for(principal, task_id)
        now = datetime.now(UTC)

        async def work(tx: Tx) -> Document:
            current = await self.db[TASKS].find_one({"_id": task_id}, session=tx.session)
            assert current is not None
            self._check_claim(current, principal, now)
            try:
                decision = decide(
                    attempt.outcome,
                    no_answers_before=current.get("no_answers", 0),
                    now=now,
                    call_back_at=attempt.call_back_at,
                    policy=self.policy,
                )
            except OutcomeError as exc:
                raise Invalid(exc.code, exc.detail) from exc
            response_id = None
            if attempt.answers is not None:
                if self.questionnaires is None or not current.get("questionnaire_url"):
                    raise Invalid("answers_unexpected", "this task has no questionnaire to answer")
                response_id = await self.questionnaires.answer_for_task(
                    tx, principal, current, attempt.answers
                )
            record = {
                "at": now,
                "agent_id": principal.subject,
                "outcome": attempt.outcome.value,
                "notes": attempt.notes,
                "call_back_at": attempt.call_back_at,
                "response_id": response_id,
            }
            if decision.revisit and response_id and await self._revisit_asked(tx, response_id):
                decision = replace(decision, revisit=False)  # the answers' risk asked already
            await self._apply(tx, current, decision, record, principal)
            await self.audit.record(
                principal,
                "followup.task.attempt",
                patient_id=current["patient_id"],
                resource=f"task:{task_id}",
                reason=reason,
                org_id=current["org_id"],
                session=tx.session,
                details={"outcome": attempt.outcome.value},
            )
            fresh = await self.db[TASKS].find_one({"_id": task_id}, session=tx.session)
            assert fresh is not None
            return fresh

        del task
        return await self.outbox.transaction(work)

    async def _revisit_asked(self, tx: Tx, response_id: str) -> bool:
        """Did the risk rules on this response ask appointments for a revisit?"""
        asked = await self.db[RISK_FLAGS].count_documents(
            {"response_id": response_id, "revisit_request_id": {"$type": "string"}},
            limit=1,
            session=tx.session,
        )
        return asked > 0

    def _check_claim(self, task: Document, principal: Principal, now: datetime) -> None:
        if task["status"] != "due":
            raise _not_due(task)
        claim = task.get("claim")
        until = claim and claim["until"]
        if until is not None and until.tzinfo is None:
            until = until.replace(tzinfo=UTC)
        if claim is None or until is None or until <= now:
            raise Conflict(
                "task_not_claimed", "claim the task before recording", detail_zh="请先领取任务"
            )
        if claim["agent_id"] != principal.subject:
            raise claimed_by_other()

    async def _apply(
        self, tx: Tx, task: Document, decision: Decision, record: Document, who: Principal
    ) -> None:
        update: dict[str, Any] = {"claim": None, "outcome": record["outcome"]}
        push = {"attempts": record}
        no_answers = task.get("no_answers", 0) + (record["outcome"] == Outcome.NO_ANSWER)
        update["no_answers"] = no_answers
        if decision.next is Next.RETRY:
            assert decision.due_at is not None
            update |= {"status": "scheduled", "due_at": decision.due_at}
            await schedule_job(
                self.db,
                tx.session,
                kind=TASK_DUE_JOB,
                due_at=decision.due_at,
                payload={"task_id": task["_id"]},
                key=task_job_key(task["_id"]),
            )
        elif decision.next is Next.UNREACHABLE:
            update["status"] = "unreachable"
        else:
            update["status"] = "done"
        if decision.revisit:
            update["revisit_request_id"] = await self.revisits.ask(
                tx, task, reason="agreed_on_call"
            )
        await self.db[TASKS].update_one(
            {"_id": task["_id"], "version": task["version"]},
            {"$set": update, "$push": push, "$inc": {"version": 1}},
            session=tx.session,
        )
        facts = {k: task.get(k) for k in ("plan_id", "patient_id", "org_id", "department_id")}
        attempts = len(task.get("attempts", [])) + 1
        if decision.next is Next.UNREACHABLE:
            payload: Any = TaskUnreachable(**facts, task_id=task["_id"], attempts=attempts)
            tx.emit(make_event(payload, source="followup", subject=task["patient_id"]))
        elif decision.next in (Next.DONE, Next.END_PLAN):
            payload = TaskCompleted(
                **facts,
                task_id=task["_id"],
                kind=task["kind"],
                outcome=record["outcome"],
                attempts=attempts,
                agent_id=who.subject,
            )
            tx.emit(make_event(payload, source="followup", subject=task["patient_id"]))
        if decision.next is Next.END_PLAN:
            await self.plans.end_for_patient(tx, task["patient_id"], "deceased", "told on a call")
        else:
            await self.plans.complete_if_done(tx, task["plan_id"])

    async def _set(self, tx: Tx, task: Document, fields: dict[str, Any]) -> None:
        await self.db[TASKS].update_one(
            {"_id": task["_id"]}, {"$set": fields, "$inc": {"version": 1}}, session=tx.session
        )


def _not_due(task: Document) -> Conflict:
    return Conflict(
        "task_not_due",
        f"the task is {task['status']}, not on the call list",
        detail_zh="该任务当前不在待呼叫列表中",
    )
