"""Events the followup service publishes on ``careloop.followup`` (docs/adr/0007-followup.md).

The patient is named by id only: national IDs, phone numbers and names never travel. Each
event carries the organization that owns the plan (``org_id``), so notifications and the
dashboards need not call back.

Two events ask other services to act:

* ``followup.revisit_requested`` asks appointments for a revisit: it books one from the
  department's reserved (referral) pool and replies with ``appointment.booked`` or
  ``appointment.booking.rejected`` naming ``revisit_request_id`` (unique per ask, so an
  ask is booked at most once).
* ``followup.questionnaire.sent`` and ``followup.survey.requested`` ask notifications to
  send the patient a link (message kinds of the same names); ``followup.risk.flagged``
  with ``urgent`` alerts the responsible doctor.
"""

from __future__ import annotations

from datetime import date, datetime

from services.followup import his_events  # noqa: F401  (the HIS's events: schemas exported too)
from shared.events import EventPayload, event_type


class PlanFacts(EventPayload):
    plan_id: str
    patient_id: str
    org_id: str
    department_id: str | None = None
    doctor_id: str | None = None


@event_type("followup.plan.created")
class PlanCreated(PlanFacts):
    source: str  # "discharge" or "referral"
    template_id: str
    template_version: int
    task_count: int
    discharged_at: datetime | None = None
    diagnosis_code: str | None = None


@event_type("followup.plan.ended")
class PlanEnded(PlanFacts):
    reason: str  # completed / readmitted / deceased / cancelled
    detail: str | None = None


@event_type("followup.task.completed")
class TaskCompleted(PlanFacts):
    task_id: str
    kind: str  # call / questionnaire / revisit
    outcome: str  # the coded outcome of the last attempt
    attempts: int
    agent_id: str | None = None


@event_type("followup.task.unreachable")
class TaskUnreachable(PlanFacts):
    """No answer after the last try: a nurse takes the patient over."""

    task_id: str
    attempts: int


@event_type("followup.questionnaire.sent")
class QuestionnaireSent(PlanFacts):
    task_id: str
    response_id: str
    questionnaire_id: str
    questionnaire_version: int
    title: str
    link: str
    due_at: datetime


@event_type("followup.risk.flagged")
class RiskFlagged(PlanFacts):
    flag_id: str
    response_id: str
    rule_id: str
    level: str  # urgent / high / moderate
    urgent: bool
    reason: str
    revisit: bool  # a revisit was asked for (followup.revisit_requested follows)


@event_type("followup.revisit_requested")
class RevisitRequested(PlanFacts):
    revisit_request_id: str
    reason: str  # "risk_flag" / "agreed_on_call" / "plan"
    earliest_date: date | None = None
    latest_date: date | None = None
    flag_id: str | None = None
    task_id: str | None = None


@event_type("followup.survey.requested")
class SurveyRequested(EventPayload):
    survey_id: str
    patient_id: str
    org_id: str
    department_id: str | None = None
    doctor_id: str | None = None
    visit_kind: str  # "outpatient" / "inpatient"
    visit_id: str
    link: str


@event_type("followup.survey.completed")
class SurveyCompleted(EventPayload):
    survey_id: str
    patient_id: str
    org_id: str
    department_id: str | None = None
    doctor_id: str | None = None
    visit_kind: str
    score: float


class ComplaintFacts(EventPayload):
    complaint_id: str
    patient_id: str | None = None
    org_id: str
    category: str
    severity: str
    status: str
    owner_id: str
    deadline_at: datetime | None = None
    complexity: str | None = None  # on_the_spot / investigation / multi_department
    escalation_level: int = 0  # 0 none, 1 department head, 2 hospital management


@event_type("followup.complaint.opened")
class ComplaintOpened(ComplaintFacts):
    channel: str  # patient_api / hotline / counter / letter
    receiver_id: str | None = None  # the first receiver (首诉人), owner until a handover


@event_type("followup.complaint.escalated")
class ComplaintEscalated(ComplaintFacts):
    """Still open past its deadline: level 1, then level 2 (``escalation_level``)."""

    missed: str  # "feedback_deadline" (level 1) / "department_escalation" (level 2)
    from_level: int = 0


@event_type("followup.complaint.resolved")
class ComplaintResolved(ComplaintFacts):
    """Sent on resolve (status ``resolved``, the callback still to come) and again on
    close (status ``closed``, with the complainant's satisfaction when reached)."""

    resolution: str
    handling_satisfaction: int | None = None
    unreachable: bool = False  # closed without reaching the complainant


@event_type("followup.adt.received")
class AdtReceived(EventPayload):
    """An HL7 v2 admission (A01) or discharge (A03) the HIS sent over MLLP or HTTP, as
    accepted. Followup is the alliance's HL7 interface; it tells the other services
    (appointments' beds) what the JSON ``his.admitted`` / ``his.discharge`` events on
    ``careloop.his`` say for an HIS that sends JSON. Ids as the alliance names them."""

    intake_id: str
    trigger: str  # A01 / A03
    org_id: str
    visit_id: str | None = None
    patient_id: str | None = None  # None: not matched to a real-name patient (yet)
    department_id: str | None = None
    ward_id: str | None = None  # PV1-3.1, the point of care
    room: str | None = None
    bed: str | None = None
    at: datetime | None = None  # admitted or discharged
    deceased: bool = False
