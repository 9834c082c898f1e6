"""The followup service's collections and their indexes (it owns all of these).

* ``intake_messages``: every HIS message received (HL7 over MLLP or HTTP, JSON on
  ``careloop.his``), its raw text encrypted, the ACK it got and what came of it; one per
  sender and control id (MSH-10), so a duplicate is acknowledged again, not planned twice.
* ``discharges``: one record per discharge, whichever way it came in, matched to a
  real-name patient or waiting for staff to match it (``intake.py``, ``discharges.py``).
* ``identity_meetings``: one document per national-ID hash, written by a discharge's
  patient lookup and by the patient's registration, so the two cannot miss each other
  (``Discharges.meet``).
* ``known_patients``: appointments' real-name patients (keyed national-ID hash, accounts),
  projected from ``patient.registered`` / ``patient.unlinked`` (``patients.py``).
* ``plan_templates``: versioned plan templates (``templates.py``).
* ``plans`` / ``followup_tasks``: a patient's follow-up plan and its tasks; the call list
  is a view of the tasks (``plans.py``, ``tasks.py``, ``call_list.py``).
* ``do_not_contact``: patients who asked not to be called or messaged.
* ``questionnaires`` / ``questionnaire_responses`` / ``risk_flags``: definitions
  (versioned), answers, and the risks they raised.
* ``surveys`` / ``complaints``: satisfaction surveys (one per visit) and complaints.
* ``complaint_settings``: an organization's complaint deadlines and desk (``_id``: the
  organization; ``complaint_settings.py``).
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

from shared.idempotency import INDEXES as IDEMPOTENCY_INDEXES
from shared.mongo import CollectionIndexes

INTAKE = "intake_messages"
DISCHARGES = "discharges"
# one document per national-ID hash that a discharge lookup and a patient's registration
# both write, so the two never pass each other unseen (Discharges.meet)
IDENTITY_MEETINGS = "identity_meetings"
PATIENTS = "known_patients"
TEMPLATES = "plan_templates"
PLANS = "plans"
TASKS = "followup_tasks"
DO_NOT_CONTACT = "do_not_contact"
QUESTIONNAIRES = "questionnaires"
RESPONSES = "questionnaire_responses"
RISK_FLAGS = "risk_flags"
SURVEYS = "surveys"
COMPLAINTS = "complaints"
COMPLAINT_SETTINGS = "complaint_settings"

INDEXES: list[CollectionIndexes] = [
    CollectionIndexes(
        INTAKE,
        [
            IndexModel([("outcome", ASCENDING), ("received_at", DESCENDING)], name="by_outcome"),
        ],
    ),
    CollectionIndexes(
        DISCHARGES,
        [
            IndexModel([("intake_id", ASCENDING)], name="one_per_message", unique=True),
            IndexModel(
                [("match_status", ASCENDING), ("org_id", ASCENDING), ("received_at", ASCENDING)],
                name="awaiting_match",
            ),
            IndexModel([("national_id_hash", ASCENDING)], name="by_national_id_hash"),
            IndexModel(
                [("patient_id", ASCENDING), ("discharged_at", DESCENDING)], name="by_patient"
            ),
        ],
    ),
    CollectionIndexes(
        PATIENTS,
        [IndexModel([("national_id_hash", ASCENDING)], name="by_national_id_hash")],
    ),
    CollectionIndexes(
        TEMPLATES,
        [
            IndexModel(
                [("template_id", ASCENDING), ("version", ASCENDING)],
                name="one_version",
                unique=True,
            ),
            IndexModel([("org_id", ASCENDING), ("status", ASCENDING)], name="by_org"),
        ],
    ),
    CollectionIndexes(
        PLANS,
        [
            # one plan per discharge or referral, however often it is told
            IndexModel(
                [("source", ASCENDING), ("source_id", ASCENDING)],
                name="one_per_source",
                unique=True,
            ),
            IndexModel([("patient_id", ASCENDING), ("status", ASCENDING)], name="by_patient"),
            IndexModel([("org_id", ASCENDING), ("created_at", DESCENDING)], name="by_org"),
        ],
    ),
    CollectionIndexes(
        TASKS,
        [
            IndexModel(
                [("org_id", ASCENDING), ("status", ASCENDING), ("due_at", ASCENDING)],
                name="call_list",
            ),
            IndexModel([("plan_id", ASCENDING), ("step", ASCENDING)], name="by_plan", unique=True),
            IndexModel([("patient_id", ASCENDING), ("status", ASCENDING)], name="by_patient"),
        ],
    ),
    CollectionIndexes(
        QUESTIONNAIRES,
        [
            IndexModel(
                [("url", ASCENDING), ("version", ASCENDING)], name="one_version", unique=True
            ),
        ],
    ),
    CollectionIndexes(
        RESPONSES,
        [
            IndexModel(
                [("task_id", ASCENDING)],
                name="one_per_task",
                unique=True,
                partialFilterExpression={"task_id": {"$type": "string"}},
            ),
            IndexModel([("patient_id", ASCENDING), ("created_at", DESCENDING)], name="by_patient"),
        ],
    ),
    CollectionIndexes(
        RISK_FLAGS,
        [
            IndexModel(
                [("org_id", ASCENDING), ("status", ASCENDING), ("raised_at", DESCENDING)],
                name="by_org",
            ),
            IndexModel(
                [("response_id", ASCENDING), ("rule_id", ASCENDING)],
                name="one_per_rule",
                unique=True,
            ),
        ],
    ),
    CollectionIndexes(
        SURVEYS,
        [
            IndexModel([("visit_id", ASCENDING)], name="one_per_visit", unique=True),
            IndexModel([("org_id", ASCENDING), ("completed_at", DESCENDING)], name="by_org"),
            # results and the dashboard: an organization's surveys sent in a period
            IndexModel([("org_id", ASCENDING), ("sent_at", ASCENDING)], name="by_org_sent"),
            IndexModel([("patient_id", ASCENDING), ("status", ASCENDING)], name="by_patient"),
        ],
    ),
    CollectionIndexes(
        COMPLAINTS,
        [
            IndexModel(
                [("org_id", ASCENDING), ("status", ASCENDING), ("deadline_at", ASCENDING)],
                name="by_org_status",
            ),
            IndexModel([("owner_id", ASCENDING), ("status", ASCENDING)], name="by_owner"),
            IndexModel(
                [("complainant_account_id", ASCENDING), ("received_at", DESCENDING)],
                name="by_complainant_account",
            ),
            # the dashboard: an organization's complaints received in a period
            IndexModel([("org_id", ASCENDING), ("received_at", ASCENDING)], name="by_org_received"),
        ],
    ),
    IDEMPOTENCY_INDEXES,
]
