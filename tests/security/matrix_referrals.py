"""The declared access of the referrals service's routes (with the directory's,
``matrix_referrals_directory.py``).

* A referral is written by doctors and referral coordinators of the referring organization
  and by the HIS (``service``). Reading one case (and its FHIR view): any staff role of the
  referring or the receiving organization, services, and the patient's own account; the
  walls (organization, patient) are checked per case, so every role is admitted here.
* Triage and care commands: doctors and coordinators of the right side, and the HIS; hold,
  resume and routing by hand: coordinators and the HIS. Nurses, agents and admins do not
  change referrals; a patient reads theirs only.
* Worklists: coordinators, doctors, the alliance admin and services; the figures:
  coordinators, admins, the alliance admin and services. ``me/referrals``: patients.

World ids: ``referral_id`` (A's patient, referred by A's organization ``h1``) and
``received_referral_id`` (A's patient, referred to ``h1``): staff of ``h1`` act for the
sending side on the first and, as allowed callers of the receiver's commands, for the
receiving side on the second. Commands are sent without
``If-Match``: an allowed caller gets 428, never 401/403, and nothing changes.
"""

from __future__ import annotations

from shared.principal import Role
from tests.security.matrix_referrals_directory import DIRECTORY_RULES
from tests.security.matrix_rules import (
    ADMIN,
    ALL,
    PATIENT,
    SERVICE,
    STAFF,
    Rule,
    health_rules,
    ops_rules,
)
from tests.security.matrix_transport import TRANSPORT_RULES

R = "/v1/referrals"
CLINICAL = frozenset({Role.DOCTOR, Role.COORDINATOR, Role.SERVICE})
COORDINATION = frozenset({Role.COORDINATOR, Role.SERVICE})
WORKLIST = frozenset({Role.COORDINATOR, Role.DOCTOR, Role.ALLIANCE_ADMIN, Role.SERVICE})
NOTICES = frozenset({Role.COORDINATOR, Role.DOCTOR})
FIGURES = ADMIN | {Role.COORDINATOR} | SERVICE
ORG_QUERY = {"org_id": "{org_id}"}
DRAFT = {
    "patient_id": "{patient_id}",
    "episode_id": "matrix-draft",
    "direction": "upward",
    "diagnosis": {"code": "I20.0", "text": "心绞痛"},
    "reason": "matrix",
    "specialty": "cardiology",
    "consent": {"given": True, "method": "verbal", "recorded_at": "2026-12-01T08:00:00+08:00"},
    "submit": False,
}
CASE = f"{R}/cases/{{referral_id}}"  # the case h1 sent (World.ids["referral_id"])
RECEIVED = {"referral_id": "received_referral_id"}  # allowed callers act on the case h1 got


def command(
    name: str,
    roles: frozenset[Role],
    body: dict[str, object] | None = None,
    *,
    received: bool = False,
) -> Rule:
    return Rule(
        "POST",
        f"{CASE}/{name}",
        roles,
        owned=True,
        body=body or {},
        allowed_ids=RECEIVED if received else {},
    )


REFERRAL_RULES: list[Rule] = [
    *health_rules(),
    *ops_rules("referrals"),
    *DIRECTORY_RULES,
    Rule("POST", f"{R}/cases", CLINICAL, body=DRAFT, why="a draft for A's patient"),
    Rule("GET", CASE, ALL, owned=True, why="walled per case: organization or own patient"),
    Rule("GET", f"{R}/fhir/Task/{{referral_id}}", ALL, owned=True),
    Rule("GET", f"{R}/fhir/ServiceRequest/{{referral_id}}", ALL, owned=True),
    # the sender's commands, on the case h1 sent
    command("submit", CLINICAL),
    command("cancel", CLINICAL, {"reason": "matrix"}),
    command("entered-in-error", CLINICAL, {"reason": "matrix"}),
    command("route-override", COORDINATION, {"org_id": "h1", "reason": "matrix"}),
    # the receiver's commands: allowed callers act on the case referred to h1
    command("accept", CLINICAL, {"department_id": "h1.CARD"}, received=True),
    command("reject", CLINICAL, {"reason_code": "no_capacity"}, received=True),
    command("booking-requests", CLINICAL, received=True),
    command("notes", CLINICAL, {"text": "matrix"}, received=True),
    command("complete", CLINICAL, received=True),
    command("hold", COORDINATION, {"reason": "matrix"}, received=True),
    command("resume", COORDINATION, received=True),
    Rule("GET", f"{R}/worklists/incoming", WORKLIST, query=ORG_QUERY),
    Rule("GET", f"{R}/worklists/outgoing", WORKLIST, query=ORG_QUERY),
    Rule("GET", f"{R}/me/referrals", PATIENT),
    Rule(
        "GET",
        f"{R}/patients/{{patient_id}}/referrals",
        STAFF,
        owned=True,
        query={"reason": "authorization matrix"},
        why="the patient's page: cases the caller's organization sent or holds (audited)",
    ),
    Rule("GET", f"{R}/notices", NOTICES, why="a doctor's own, the coordinators' desk"),
    Rule("POST", f"{R}/notices/read", NOTICES, body={"ids": ["{referral_id}"]}),
    Rule("GET", f"{R}/figures", FIGURES, query=ORG_QUERY),
    *TRANSPORT_RULES,  # patient transport and escort (matrix_transport.py)
]
