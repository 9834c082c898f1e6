"""Satisfaction surveys (满意度调查): one per visit, sent a while after it, answered once.

* **When.** After an outpatient visit (``appointment.checked_in``): ``survey_delay_hours``
  after the visit ends (the slot's end, or the check-in if later). After a discharge
  matched to a patient (``discharges.py``; not when the patient died):
  ``survey_delay_hours_inpatient`` after the discharge. The send is a timed job keyed by
  the survey (``followup.survey_send``), so it goes out once across replicas.
* **One per visit.** ``visit_id`` is ``appointment:{appointment_id}``, or
  ``discharge:{org_id}:{visit_id}`` (a stay told twice, or over two channels, is one
  survey), else ``discharge:{discharge_id}``; a repeated event finds it and does nothing.
* **Do-not-contact.** A patient who asked not to be contacted gets no survey: it is kept
  as ``suppressed`` (checked when it is made and again when it would be sent).
* **Quiet hours.** Notifications holds a non-urgent push message (this kind) until the
  patient's quiet hours end (default 22:00-07:00) and puts it in the inbox at once; it does
  not drop it. So the survey is asked for at its time and the patient's quiet hours are
  left to notifications.
* **Answering.** The patient's account answers once (``survey_already_completed``) within
  ``survey_valid_days`` of the send (409 ``survey_expired`` after); the score is the mean
  (1-5) of the rated items (``satisfaction_score``).

Statuses: scheduled -> sent -> completed; suppressed. An expired survey stays ``sent``
(expiry is read from ``expires_at``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from services.followup.do_not_contact import DoNotContact
from services.followup.domain.questionnaire import QuestionnaireDefinition
from services.followup.domain.questionnaire_answers import (
    satisfaction_score,
    validate_answers,
)
from services.followup.events import SurveyCompleted, SurveyRequested
from services.followup.patients import KnownPatients
from services.followup.questionnaire_library import load_builtin
from services.followup.settings import FollowupSettings
from services.followup.store import SURVEYS
from services.followup.survey_results import GroupBy, summarize
from shared.audit import AuditLog
from shared.domain_errors import Conflict, Forbidden, NotFound
from shared.events import make_event
from shared.ids import new_id
from shared.jobs import Job, schedule_job
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.principal import Principal, Role

log = structlog.get_logger(__name__)

SURVEY_SEND_JOB = "followup.survey_send"
QUESTIONNAIRES = {"outpatient": "satisfaction-outpatient", "inpatient": "satisfaction-inpatient"}


def survey_job_key(survey_id: str) -> str:
    return f"followup-survey:{survey_id}"


def survey_not_found(survey_id: str) -> NotFound:
    return NotFound("survey_not_found", f"no survey {survey_id!r}", detail_zh="满意度调查不存在")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Surveys:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        patients: KnownPatients,
        dnc: DoNotContact,
        audit: AuditLog,
        settings: FollowupSettings,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.patients = patients
        self.dnc = dnc
        self.audit = audit
        self.settings = settings

    # --- making and sending ----------------------------------------------------------------

    async def after_visit(self, tx: Tx, data: Mapping[str, Any], checked_in_at: datetime) -> None:
        """An outpatient checked in (``appointment.checked_in``): survey the visit later."""
        ends_at = _aware(datetime.fromisoformat(str(data["ends_at"])))
        visit_end = max(ends_at, _aware(checked_in_at))
        await self._make(
            tx,
            visit_id=f"appointment:{data['appointment_id']}",
            kind="outpatient",
            patient_id=data["patient_id"],
            org_id=data["org_id"],
            department_id=data.get("department_id"),
            doctor_id=data.get("resource_id"),
            visit_at=visit_end,
            send_at=visit_end + timedelta(hours=self.settings.survey_delay_hours),
        )

    async def after_discharge(self, tx: Tx, discharge: Document) -> None:
        """A discharge matched to its patient (not a death): survey the stay later."""
        if discharge.get("deceased") or not discharge.get("patient_id"):
            return
        visit = discharge.get("visit_id")
        visit_id = (
            f"discharge:{discharge['org_id']}:{visit}" if visit else f"discharge:{discharge['_id']}"
        )
        discharged_at = _aware(discharge["discharged_at"])
        await self._make(
            tx,
            visit_id=visit_id,
            kind="inpatient",
            patient_id=discharge["patient_id"],
            org_id=discharge["org_id"],
            department_id=discharge.get("department_id"),
            doctor_id=discharge.get("doctor_id"),
            visit_at=discharged_at,
            send_at=discharged_at + timedelta(hours=self.settings.survey_delay_hours_inpatient),
        )

    async def _make(
        self,
        tx: Tx,
        *,
        visit_id: str,
        kind: str,
        patient_id: str,
        org_id: str,
        department_id: str | None,
        doctor_id: str | None,
        visit_at: datetime,
        send_at: datetime,
    ) -> str | None:
        existing = await self.db[SURVEYS].find_one(
            {"visit_id": visit_id}, {"_id": 1}, session=tx.session
        )
        if existing is not None:
            return None  # one survey per visit: a repeated event does nothing
        now = datetime.now(UTC)
        survey_id = new_id()
        suppressed = await self.dnc.is_set(patient_id, tx.session)
        await self.db[SURVEYS].insert_one(
            {
                "_id": survey_id,
                "visit_id": visit_id,
                "visit_kind": kind,
                "questionnaire": QUESTIONNAIRES[kind],
                "patient_id": patient_id,
                "org_id": org_id,
                "department_id": department_id,
                "doctor_id": doctor_id,
                "visit_at": visit_at,
                "send_at": max(send_at, now),
                "status": "suppressed" if suppressed else "scheduled",
                "suppressed_reason": "do_not_contact" if suppressed else None,
                "sent_at": None,
                "expires_at": None,
                "completed_at": None,
                "score": None,
                "created_at": now,
                "version": 1,
            },
            session=tx.session,
        )
        if not suppressed:
            await schedule_job(
                self.db,
                tx.session,
                kind=SURVEY_SEND_JOB,
                due_at=max(send_at, now),
                payload={"survey_id": survey_id},
                key=survey_job_key(survey_id),
            )
        log.info("followup.survey.made", survey_id=survey_id, suppressed=suppressed)
        return survey_id

    async def fire_send(self, job: Job, tx: Tx) -> None:
        """The survey's time came: ask notifications to send the link (once)."""
        survey = await self.db[SURVEYS].find_one(
            {"_id": job.payload["survey_id"], "status": "scheduled"}, session=tx.session
        )
        if survey is None:
            return
        if await self.dnc.is_set(survey["patient_id"], tx.session):
            await self._set(
                tx, survey, {"status": "suppressed", "suppressed_reason": "do_not_contact"}
            )
            return
        now = datetime.now(UTC)
        link = self.settings.survey_link_base + survey["_id"]
        expires_at = now + timedelta(days=self.settings.survey_valid_days)
        fields = {"status": "sent", "sent_at": now, "expires_at": expires_at, "link": link}
        await self._set(tx, survey, fields)
        payload = SurveyRequested(
            survey_id=survey["_id"],
            patient_id=survey["patient_id"],
            org_id=survey["org_id"],
            department_id=survey.get("department_id"),
            doctor_id=survey.get("doctor_id"),
            visit_kind=survey["visit_kind"],
            visit_id=survey["visit_id"],
            link=link,
        )
        tx.emit(make_event(payload, source="followup", subject=survey["patient_id"]))

    async def _set(self, tx: Tx, survey: Document, fields: dict[str, Any]) -> None:
        await self.db[SURVEYS].update_one(
            {"_id": survey["_id"]}, {"$set": fields, "$inc": {"version": 1}}, session=tx.session
        )

    # --- the patient -----------------------------------------------------------------------

    async def _for_patient(self, caller: Principal, survey_id: str) -> Document:
        survey = await self.db[SURVEYS].find_one({"_id": survey_id})
        if survey is None or survey["status"] not in ("sent", "completed"):
            raise survey_not_found(survey_id)
        patient_id = survey["patient_id"]
        may = caller.has_any(Role.PATIENT) and (
            patient_id in caller.patient_ids
            or await self.patients.manages(caller.subject, patient_id)
        )
        if not may:
            raise Forbidden(
                "forbidden_patient",
                "You may not access this patient's records.",
                detail_zh="您无权查看该就诊人的信息。",
            )
        return survey

    async def get_for(self, caller: Principal, survey_id: str) -> dict[str, Any]:
        """The survey with the questionnaire to render (the patient's account only)."""
        survey = await self._for_patient(caller, survey_id)
        definition = load_builtin(survey["questionnaire"])
        return {**survey_view(survey), "questionnaire": definition_view(definition)}

    async def answer(
        self, caller: Principal, survey_id: str, answers: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Record the answers once; 422 (nothing written) when they do not fit."""
        survey = await self._for_patient(caller, survey_id)
        if survey["status"] == "completed":
            raise Conflict(
                "survey_already_completed",
                "this survey was answered already",
                detail_zh="该满意度调查已提交",
            )
        if survey["expires_at"] is not None and _aware(survey["expires_at"]) <= datetime.now(UTC):
            raise Conflict(
                "survey_expired", "this survey is closed", detail_zh="该满意度调查已过期"
            )
        validated = validate_answers(load_builtin(survey["questionnaire"]), answers)
        score = satisfaction_score(validated)

        async def work(tx: Tx) -> Document:
            now = datetime.now(UTC)
            done = await self.db[SURVEYS].find_one_and_update(
                {"_id": survey_id, "status": "sent"},
                {
                    "$set": {
                        "status": "completed",
                        "answers": validated.answers,
                        "score": score,
                        "percent": round((score - 1) * 25, 1),
                        "completed_at": now,
                        "completed_by": caller.subject,
                    },
                    "$inc": {"version": 1},
                },
                return_document=True,
                session=tx.session,
            )
            if done is None:
                raise Conflict(
                    "survey_already_completed",
                    "this survey was answered already",
                    detail_zh="该满意度调查已提交",
                )
            payload = SurveyCompleted(
                survey_id=survey_id,
                patient_id=done["patient_id"],
                org_id=done["org_id"],
                department_id=done.get("department_id"),
                doctor_id=done.get("doctor_id"),
                visit_kind=done["visit_kind"],
                score=score,
            )
            tx.emit(make_event(payload, source="followup", subject=done["patient_id"]))
            return done

        done = await self.outbox.transaction(work)
        log.info("followup.survey.completed", survey_id=survey_id)
        return survey_view(done)

    async def open_for_account(self, caller: Principal) -> list[dict[str, Any]]:
        """Open surveys (sent, not answered, not expired) of the patients the account manages."""
        patients = set(caller.patient_ids) | await self.patients.managed_by(caller.subject)
        if not patients:
            return []
        query = {
            "patient_id": {"$in": sorted(patients)},
            "status": "sent",
            "expires_at": {"$gt": datetime.now(UTC)},
        }
        docs = await self.db[SURVEYS].find(query, sort=[("sent_at", -1)]).to_list(100)
        return [survey_view(d) for d in docs]

    # --- results ---------------------------------------------------------------------------

    async def sent_between(self, org_id: str, since: datetime, until: datetime) -> list[Document]:
        """The organization's surveys sent in ``[since, until)`` (index ``by_org_sent``)."""
        query = {"org_id": org_id, "sent_at": {"$gte": since, "$lt": until}}
        projection = {"department_id": 1, "doctor_id": 1, "org_id": 1, "status": 1, "score": 1}
        return await self.db[SURVEYS].find(query, projection).to_list(None)

    async def results(
        self,
        principal: Principal,
        org_id: str,
        since: datetime,
        until: datetime,
        group_by: GroupBy,
        reason: str | None,
    ) -> list[dict[str, Any]]:
        groups = summarize(await self.sent_between(org_id, since, until), group_by)
        await self.audit.record(
            principal,
            "followup.survey.results",
            patient_id=None,
            resource="surveys:results",
            reason=reason,
            org_id=org_id,
            details={"group_by": group_by, "groups": len(groups)},
        )
        return groups


SURVEY_KEYS = (
    "visit_id",
    "visit_kind",
    "questionnaire",
    "patient_id",
    "org_id",
    "department_id",
    "doctor_id",
    "visit_at",
    "status",
    "sent_at",
    "expires_at",
    "link",
    "completed_at",
    "score",
    "percent",
)


def survey_view(doc: Document) -> dict[str, Any]:
    return {"survey_id": doc["_id"], **{k: doc.get(k) for k in SURVEY_KEYS}}


def definition_view(definition: QuestionnaireDefinition) -> dict[str, Any]:
    view: dict[str, Any] = definition.model_dump(mode="json", exclude_none=True)
    return view
