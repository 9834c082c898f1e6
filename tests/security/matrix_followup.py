"""The declared access of the followup service's routes (``services/followup/routes``).

* Role sets are the routes' (``routes/deps.py``): the call list for the hotline's agents,
  nurses, admins and services (``CALL_STAFF``); plans, templates, questionnaires, risk
  flags and results for them and doctors (``CLINICAL_STAFF``); master data and the
  dashboard for admins and services; questionnaire definitions for the alliance admin and
  the HIS; HL7 intake for the HIS. Referral coordinators have no part in follow-up
  (``services/followup/staff_access.py``), also where a route takes patients' accounts
  and staff alike and checks the object itself (a patient's plans, do-not-contact, one
  questionnaire response: see each rule).
* Objects are walled per organization (``shared.scoping.ensure_org``): staff of ``h1``
  reach A's objects, staff of another organization get 403. A patient account reaches
  only what concerns the patients it manages (plans, do-not-contact, questionnaire
  responses, surveys, complaints).
* Complaints (首诉负责制): patients and complaint staff (every role but coordinators) raise
  and read them; commands are the owner's (``h1``'s desk: ``matrix-agent``), the
  organization's admins', the alliance admin's and services'; the complainant may
  withdraw. Commands are sent without ``If-Match``: an allowed caller gets 428 (or 409 in
  a status the command does not apply to), and nothing changes.

World ids (``seed_followup.py``): ``plan_id`` with the due call ``task_id``, the answered
``response_id`` and its ``flag_id``; ``survey_id``; ``complaint_id``; ``message_id`` (A's
HL7 discharge); ``discharge_id`` (a stranger's discharge waiting for a match). Allowed
callers of destructive commands act on spare objects: A's second plan's call and flag,
the spare patient's plan, a spare template.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from shared.principal import Role
from tests.security.matrix_rules import (
    ADMIN,
    ADMIN_OR_SERVICE,
    ALL,
    PATIENT,
    SERVICE,
    Rule,
    health_rules,
    ops_rules,
)

F = "/v1/followup"
REASON = {"reason": "authorization matrix"}
ORG_QUERY = {"org_id": "{org_id}", **REASON}  # alliance admins and services name the org
CALL_STAFF = frozenset({Role.AGENT, Role.NURSE}) | ADMIN | SERVICE
CLINICAL_STAFF = CALL_STAFF | {Role.DOCTOR}
ALLIANCE_KEEPERS = frozenset({Role.ALLIANCE_ADMIN, Role.SERVICE})
HIS = SERVICE
# a patient's own account, or follow-up's staff (every role but referral coordinators)
PATIENT_OR_FOLLOWUP = ALL - {Role.COORDINATOR}
CLINICIANS = frozenset({Role.DOCTOR, Role.NURSE})
# complaints: patients and complaint staff (services/followup/complaint_access.py)
COMPLAINT_PARTIES = ALL - {Role.COORDINATOR}
# a command: the owner (h1's desk, matrix-agent), the organization's admin, the alliance
# admin and services; doctors and nurses who do not own it get 403 not_complaint_owner
COMPLAINT_ACTORS = frozenset({Role.AGENT}) | ADMIN | SERVICE
TEMPLATE = {
    "name": "matrix: never chosen",
    "org_id": "{org_id}",
    "icd_prefix": "Z97",
    "steps": [{"kind": "call", "day": 30, "title": "matrix"}],
}


def _builtin(key: str) -> dict[str, Any]:
    """A built-in questionnaire definition: written again, it is 409 questionnaire_exists."""
    library = resources.files("services.followup.questionnaire_library")
    found: dict[str, Any] = json.loads(library.joinpath(f"{key}.json").read_text("utf-8"))
    return found


def complaint_command(name: str, body: dict[str, Any], roles: frozenset[Role]) -> Rule:
    return Rule(
        "POST",
        f"{F}/complaints/{{complaint_id}}/{name}",
        roles,
        owned=True,
        body=body,
        why="no If-Match: 428 (or 409) for an allowed caller, nothing changes",
    )


FOLLOWUP_RULES: list[Rule] = [
    *health_rules(),
    *ops_rules("followup"),
    # intake from the HIS, and the staff match of discharges nobody is known for
    Rule(
        "POST",
        f"{F}/his/adt",
        HIS,
        body="not an HL7 message",
        why="the HIS posts ADT; an allowed caller's non-HL7 body is 422 hl7_rejected",
    ),
    Rule("GET", f"{F}/intake/messages", ADMIN_OR_SERVICE, query=ORG_QUERY),
    Rule(
        "GET",
        f"{F}/intake/messages/{{message_id}}",
        ADMIN_OR_SERVICE,
        owned=True,
        query=REASON,
        why="A's HL7 discharge with its raw text (names the patient): h1's admins, audited",
    ),
    Rule("GET", f"{F}/discharges/unmatched", CALL_STAFF, query=ORG_QUERY),
    Rule(
        "POST",
        f"{F}/discharges/{{discharge_id}}/match",
        CALL_STAFF,
        owned=True,
        query=REASON,
        body={"patient_id": "{patient_id}"},
        why="h1's waiting discharge; A's patient is not its national ID: 409, nothing planned",
    ),
    # plan templates: admins write (their organization's), clinical staff read
    Rule("POST", f"{F}/plan-templates", ADMIN_OR_SERVICE, body=TEMPLATE),
    Rule("GET", f"{F}/plan-templates", CLINICAL_STAFF, query={"org_id": "{org_id}"}),
    Rule(
        "GET",
        f"{F}/plan-templates/{{template_id}}",
        CLINICAL_STAFF,
        owned=True,
        why="h1's template: walled to h1",
    ),
    Rule(
        "PUT",
        f"{F}/plan-templates/{{template_id}}",
        ADMIN_OR_SERVICE,
        body=TEMPLATE,
        why="no If-Match: 428 before anything is read (so no organization wall to test)",
    ),
    Rule(
        "POST",
        f"{F}/plan-templates/{{template_id}}/retire",
        ADMIN_OR_SERVICE,
        owned=True,
        allowed_ids={"template_id": "spare_template_id"},
        why="h1's template: walled to h1; allowed callers retire a spare one",
    ),
    # plans
    Rule("GET", f"{F}/plans/{{plan_id}}", CLINICAL_STAFF, owned=True, query=REASON),
    Rule(
        "POST",
        f"{F}/plans/{{plan_id}}/end",
        CLINICAL_STAFF,
        owned=True,
        body={"reason": "cancelled", "detail": "authorization matrix"},
        allowed_ids={"plan_id": "spare_plan_id"},
        why="allowed callers end the spare patient's plan",
    ),
    Rule(
        "GET",
        f"{F}/patients/{{patient_id}}/plans",
        PATIENT_OR_FOLLOWUP,
        owned=True,
        query=REASON,
        why="checked per patient: the patient's account, follow-up staff of an "
        "organization with a plan for the patient, services",
    ),
    Rule(
        "PUT",
        f"{F}/patients/{{patient_id}}/do-not-contact",
        PATIENT_OR_FOLLOWUP,
        owned=True,
        query=REASON,
        body={"note": "authorization matrix"},
        allowed_ids={"patient_id": "spare_patient_id"},
        why="as a patient's plans; allowed callers set it for A's spare patient",
    ),
    Rule(
        "DELETE",
        f"{F}/patients/{{patient_id}}/do-not-contact",
        PATIENT_OR_FOLLOWUP,
        owned=True,
        query=REASON,
        allowed_ids={"patient_id": "spare_patient_id"},
    ),
    # the call list: allowed callers claim, release and record on A's second plan's call
    Rule("GET", f"{F}/call-list", CALL_STAFF, query=ORG_QUERY),
    Rule("GET", f"{F}/escalations", CALL_STAFF, query=ORG_QUERY),
    Rule("GET", f"{F}/tasks/{{task_id}}", CALL_STAFF, owned=True, query=REASON),
    Rule(
        "POST",
        f"{F}/tasks/{{task_id}}/claim",
        CALL_STAFF,
        owned=True,
        query=REASON,
        allowed_ids={"task_id": "spare_task_id"},
    ),
    Rule(
        "POST",
        f"{F}/tasks/{{task_id}}/release",
        CALL_STAFF,
        owned=True,
        allowed_ids={"task_id": "spare_task_id"},
    ),
    Rule(
        "POST",
        f"{F}/tasks/{{task_id}}/attempts",
        CALL_STAFF,
        owned=True,
        query=REASON,
        body={"outcome": "no_answer", "notes": "authorization matrix"},
        allowed_ids={"task_id": "spare_task_id"},
        why="the claim's holder only (409 for the others)",
    ),
    # questionnaires: definitions alliance-wide; responses A's
    Rule(
        "POST",
        f"{F}/questionnaires",
        ALLIANCE_KEEPERS,
        body=_builtin("discharge-general"),
        why="a built-in again: 409 questionnaire_exists",
    ),
    Rule("GET", f"{F}/questionnaires", CLINICAL_STAFF),
    Rule("GET", f"{F}/questionnaires/{{key}}", CLINICAL_STAFF),
    Rule("GET", f"{F}/questionnaires/{{key}}/fhir", CLINICAL_STAFF),
    Rule(
        "PUT",
        f"{F}/questionnaires/{{key}}",
        ALLIANCE_KEEPERS,
        body=_builtin("post-pci-day7"),
        why="no If-Match: 428",
    ),
    Rule(
        "GET",
        f"{F}/me/questionnaires",
        PATIENT,
        why="questionnaires waiting for the answers of the patients the account manages",
    ),
    Rule(
        "GET",
        f"{F}/questionnaire-responses/{{response_id}}",
        PATIENT_OR_FOLLOWUP,
        owned=True,
        query=REASON,
        why="checked per response: the patient's account, follow-up staff of its "
        "organization, services",
    ),
    Rule(
        "POST",
        f"{F}/questionnaire-responses/{{response_id}}/answers",
        PATIENT,
        owned=True,
        body={"answers": {"chest_pain": False}},
        why="the patient's account only; A's response is answered: 409",
    ),
    Rule(
        "GET",
        f"{F}/questionnaire-responses/{{response_id}}/fhir",
        PATIENT_OR_FOLLOWUP,
        owned=True,
        query=REASON,
    ),
    # risk flags
    Rule("GET", f"{F}/risk-flags", CLINICAL_STAFF, query=ORG_QUERY),
    Rule(
        "POST",
        f"{F}/risk-flags/{{flag_id}}/acknowledge",
        CLINICIANS,
        owned=True,
        query=REASON,
        body={"note": "authorization matrix"},
        allowed_ids={"flag_id": "spare_flag_id"},
        why="a doctor or nurse of the organization; allowed callers take A's other flag",
    ),
    # satisfaction surveys
    Rule("GET", f"{F}/surveys/results", CLINICAL_STAFF, query=ORG_QUERY),
    Rule(
        "GET",
        f"{F}/me/surveys",
        PATIENT,
        why="open surveys of the patients the account manages",
    ),
    Rule("GET", f"{F}/surveys/{{survey_id}}", PATIENT, owned=True),
    Rule(
        "POST",
        f"{F}/surveys/{{survey_id}}/answers",
        PATIENT,
        owned=True,
        body={"answers": {"matrix-no-such-item": 5}},
        why="the patient's account only; answers that do not fit: 422, nothing written",
    ),
    Rule("GET", f"{F}/figures", ADMIN_OR_SERVICE, query=ORG_QUERY),
    # complaints
    Rule(
        "POST",
        f"{F}/complaints",
        COMPLAINT_PARTIES,
        body={"org_id": "{org_id}", "category": "other", "description": "authorization matrix"},
    ),
    Rule("GET", f"{F}/complaints", CLINICAL_STAFF, query=ORG_QUERY),
    Rule(
        "GET",
        f"{F}/complaints/{{complaint_id}}",
        COMPLAINT_PARTIES,
        owned=True,
        query=REASON,
        why="staff of its organization (audited) and the complainant's account",
    ),
    Rule("GET", f"{F}/me/complaints", PATIENT),
    complaint_command("start-investigation", {}, COMPLAINT_ACTORS),
    complaint_command(
        "handover", {"to_owner_id": "matrix-nurse", "reason": "matrix"}, COMPLAINT_ACTORS
    ),
    complaint_command("reclassify", {"complexity": "multi_department"}, COMPLAINT_ACTORS),
    complaint_command("resolve", {"resolution": "matrix"}, COMPLAINT_ACTORS),
    complaint_command("callback", {"reached": True}, COMPLAINT_ACTORS),
    complaint_command("reopen", {"reason": "matrix"}, COMPLAINT_ACTORS),
    complaint_command("close", {}, COMPLAINT_ACTORS),
    complaint_command("withdraw", {"reason": "matrix"}, COMPLAINT_ACTORS | PATIENT),
    Rule(
        "GET",
        f"{F}/admin/complaint-settings/{{org_id}}",
        ADMIN_OR_SERVICE,
        query=REASON,
    ),
    Rule(
        "PUT",
        f"{F}/admin/complaint-settings/{{org_id}}",
        ADMIN_OR_SERVICE,
        body={"desk_owner_id": "matrix-agent"},
        why="allowed callers store what the seed stored (the defaults, h1's desk)",
    ),
]
