"""Questionnaire responses: sent to the patient when a questionnaire task falls due, answered
by the patient through the link (or by an agent on the phone), then scored, kept as a FHIR
QuestionnaireResponse and checked for risks (``risk_flags.py``).

* **Sent.** ``send_for_task`` makes a response (``status`` ``sent``) with the latest active
  version of the task's questionnaire and asks notifications to send the link
  (``followup.questionnaire.sent``); the task waits. An unknown questionnaire raises
  :class:`~services.followup.tasks.QuestionnaireUnavailable`: the task becomes a call.
* **Answered.** Answers are validated against the response's version (422
  ``questionnaire_answers_invalid``, nothing written), stored with the score and the FHIR
  resource; a second answer is 409 ``response_already_completed``. The patient's answer
  finishes the waiting task (``followup.task.completed``, outcome ``answered``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from services.followup.domain.questionnaire_answers import validate_answers
from services.followup.events import QuestionnaireSent, TaskCompleted
from services.followup.fhir import questionnaire_response
from services.followup.patients import KnownPatients
from services.followup.plans import Plans
from services.followup.questionnaire_catalog import QuestionnaireCatalog, questionnaire_not_found
from services.followup.risk_flags import RiskFlags
from services.followup.settings import FollowupSettings
from services.followup.staff_access import ensure_followup_staff
from services.followup.store import RESPONSES, TASKS
from services.followup.tasks import QuestionnaireUnavailable
from shared.audit import AuditLog
from shared.domain_errors import Conflict, Forbidden, NotFound
from shared.events import make_event
from shared.ids import new_id
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.principal import Principal, Role
from shared.scoping import ensure_org

log = structlog.get_logger(__name__)

FACTS = ("plan_id", "patient_id", "org_id", "department_id", "doctor_id")
VIEW_KEYS = (
    "task_id",
    *FACTS,
    "questionnaire",
    "questionnaire_version",
    "questionnaire_url",
    "title",
    "status",
    "link",
    "created_at",
    "completed_at",
    "answers",
    "score",
    "author",
)


def response_not_found(response_id: str) -> NotFound:
    return NotFound(
        "questionnaire_response_not_found",
        f"no questionnaire response {response_id!r}",
        detail_zh="问卷不存在",
    )


def already_completed() -> Conflict:
    return Conflict(
        "response_already_completed",
        "this questionnaire was answered already",
        detail_zh="该问卷已提交，不能重复提交",
    )


def forbidden_patient() -> Forbidden:
    return Forbidden(
        "forbidden_patient",
        "You may not access this patient's records.",
        detail_zh="您无权查看该就诊人的信息。",
    )


class Questionnaires:
    """The ``QuestionnaireDesk`` of ``tasks.py``, and the patients' answering."""

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        catalog: QuestionnaireCatalog,
        plans: Plans,
        flags: RiskFlags,
        patients: KnownPatients,
        audit: AuditLog,
        settings: FollowupSettings,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.catalog = catalog
        self.plans = plans
        self.flags = flags
        self.patients = patients
        self.audit = audit
        self.settings = settings

    # --- the desk of tasks.py ----------------------------------------------------------------

    async def send_for_task(self, tx: Tx, task: Document) -> str:
        """Send the task's questionnaire (latest active version); returns the response id."""
        url = task.get("questionnaire_url") or ""
        doc = await self.catalog.find(url, active_only=True, session=tx.session)
        if doc is None:
            log.warning("followup.questionnaire.unknown", task_id=task["_id"], url=url)
            raise QuestionnaireUnavailable(url)
        response = self._new_response(task, doc)
        await self.db[RESPONSES].insert_one(response, session=tx.session)
        due_at = task["due_at"]
        payload = QuestionnaireSent(
            **{k: task.get(k) for k in FACTS},
            task_id=task["_id"],
            response_id=response["_id"],
            questionnaire_id=doc["key"],
            questionnaire_version=doc["version"],
            title=doc["title"],
            link=response["link"],
            due_at=due_at if due_at.tzinfo else due_at.replace(tzinfo=UTC),
        )
        tx.emit(make_event(payload, source="followup", subject=task["patient_id"]))
        log.info("followup.questionnaire.sent", task_id=task["_id"], response_id=response["_id"])
        return str(response["_id"])

    async def answer_for_task(
        self, tx: Tx, principal: Principal, task: Document, answers: Mapping[str, Any]
    ) -> str:
        """Answers an agent took on the phone: complete (or make) the task's response."""
        query = (
            {"_id": task["response_id"]} if task.get("response_id") else {"task_id": task["_id"]}
        )
        response = await self.db[RESPONSES].find_one(query, session=tx.session)
        if response is not None and response["status"] == "completed":
            raise already_completed()
        if response is not None:
            key, version = response["questionnaire"], response["questionnaire_version"]
            doc = await self.catalog.find(key, version, session=tx.session)
        else:
            key, version = task.get("questionnaire_url") or "", None
            doc = await self.catalog.find(key, active_only=True, session=tx.session)
        if doc is None:
            raise questionnaire_not_found(key)
        new = response is None
        if response is None:
            response = self._new_response(task, doc)
        await self._complete(tx, response, doc, answers, "agent", principal.subject, new=new)
        return str(response["_id"])

    # --- the patient -------------------------------------------------------------------------

    async def readable(
        self, principal: Principal, response_id: str, reason: str | None
    ) -> Document:
        """A response for the patient's account, or staff of its organization (audited)."""
        response = await self.db[RESPONSES].find_one({"_id": response_id})
        if response is None:
            raise response_not_found(response_id)
        if principal.is_staff or principal.has_any(Role.SERVICE):
            ensure_followup_staff(principal)
            ensure_org(principal, response["org_id"])
            await self.audit.record(
                principal,
                "followup.questionnaire_response.read",
                patient_id=response["patient_id"],
                resource=f"questionnaire_response:{response_id}",
                reason=reason,
                org_id=response["org_id"],
            )
        else:
            await self._ensure_patient(principal, response["patient_id"])
        return response

    async def definition_of(self, response: Document) -> dict[str, Any]:
        doc = await self.catalog.find(response["questionnaire"], response["questionnaire_version"])
        if doc is None:
            raise questionnaire_not_found(response["questionnaire"])
        return dict(doc["definition"])

    async def answer_as_patient(
        self, principal: Principal, response_id: str, answers: Mapping[str, Any]
    ) -> Document:
        """The patient's own answers through the link; the waiting task is done."""
        response = await self.db[RESPONSES].find_one({"_id": response_id})
        if response is None:
            raise response_not_found(response_id)
        await self._ensure_patient(principal, response["patient_id"])

        async def work(tx: Tx) -> Document:
            current = await self.db[RESPONSES].find_one({"_id": response_id}, session=tx.session)
            assert current is not None
            if current["status"] == "completed":
                raise already_completed()
            key, version = current["questionnaire"], current["questionnaire_version"]
            doc = await self.catalog.find(key, version, session=tx.session)
            if doc is None:
                raise questionnaire_not_found(key)
            completed = await self._complete(tx, current, doc, answers, "patient", None, new=False)
            await self._finish_task(tx, current)
            return completed

        return await self.outbox.transaction(work)

    async def open_for_account(self, caller: Principal) -> list[dict[str, Any]]:
        """Questionnaires waiting for answers from the patients the account manages."""
        patients = set(caller.patient_ids) | await self.patients.managed_by(caller.subject)
        if not patients:
            return []
        query = {"patient_id": {"$in": sorted(patients)}, "status": "sent"}
        docs = await self.db[RESPONSES].find(query, sort=[("created_at", -1)]).to_list(100)
        return [response_view(d) for d in docs]

    async def _ensure_patient(self, principal: Principal, patient_id: str) -> None:
        if not principal.has_any(Role.PATIENT):
            raise forbidden_patient()
        if patient_id in principal.patient_ids:
            return
        if not await self.patients.manages(principal.subject, patient_id):
            raise forbidden_patient()

    # --- completing ----------------------------------------------------------------------------

    def _new_response(self, task: Document, doc: Document) -> Document:
        response_id = new_id()
        return {
            "_id": response_id,
            "task_id": task["_id"],
            **{k: task.get(k) for k in FACTS},
            "questionnaire": doc["key"],
            "questionnaire_version": doc["version"],
            "questionnaire_url": doc["url"],
            "title": doc["title"],
            "status": "sent",
            "link": f"{self.settings.questionnaire_link_base}{response_id}",
            "created_at": datetime.now(UTC),
            "version": 1,
        }

    async def _complete(
        self,
        tx: Tx,
        response: Document,
        doc: Document,
        answers: Mapping[str, Any],
        author_kind: Literal["patient", "agent"],
        agent_id: str | None,
        *,
        new: bool,
    ) -> Document:
        """Validate (nothing is written when invalid), store, and flag the risks."""
        definition = self.catalog.parsed(doc)
        validated = validate_answers(definition, answers)
        now = datetime.now(UTC)
        fhir = questionnaire_response(
            definition,
            validated,
            response_id=response["_id"],
            patient_id=response["patient_id"],
            authored=now,
            author_kind=author_kind,
            agent_id=agent_id,
        )
        fields = {
            "status": "completed",
            "answers": validated.answers,
            "ordinals": validated.ordinals,
            "score": validated.score,
            "fhir": fhir,
            "author": {"kind": author_kind, "agent_id": agent_id},
            "completed_at": now,
        }
        if new:
            await self.db[RESPONSES].insert_one({**response, **fields}, session=tx.session)
        else:
            result = await self.db[RESPONSES].update_one(
                {"_id": response["_id"], "status": "sent"},
                {"$set": fields, "$inc": {"version": 1}},
                session=tx.session,
            )
            if result.modified_count == 0:
                raise already_completed()
        completed = {**response, **fields}
        await self.flags.raise_for(tx, completed, definition, validated)
        log.info(
            "followup.questionnaire.completed",
            response_id=response["_id"],
            author=author_kind,
            score=validated.score,
        )
        return completed

    async def _finish_task(self, tx: Tx, response: Document) -> None:
        task = await self.db[TASKS].find_one(
            {"_id": response.get("task_id"), "status": {"$in": ["waiting", "due"]}},
            session=tx.session,
        )
        # "due": unanswered for a while, it went on the call list; answered now, it is done
        if task is None:  # the plan ended meanwhile: the answers are kept all the same
            return
        await self.db[TASKS].update_one(
            {"_id": task["_id"]},
            {
                "$set": {
                    "status": "done",
                    "outcome": "answered",
                    "claim": None,
                    "completed_at": datetime.now(UTC),
                },
                "$inc": {"version": 1},
            },
            session=tx.session,
        )
        payload = TaskCompleted(
            **{k: task.get(k) for k in FACTS},
            task_id=task["_id"],
            kind=task["kind"],
            outcome="answered",
            attempts=len(task.get("attempts", [])),
        )
        tx.emit(make_event(payload, source="followup", subject=task["patient_id"]))
        await self.plans.complete_if_done(tx, task["plan_id"])


def response_view(response: Document) -> dict[str, Any]:
    return {"response_id": response["_id"], **{k: response.get(k) for k in VIEW_KEYS}}
