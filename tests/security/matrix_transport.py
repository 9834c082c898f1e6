"""The declared access of the referrals service's transport routes (patient transport and
escort, 陪检 / 院内转运; ``services/referrals/transports.py``).

* Asking for a transport and cancelling one: nurses, doctors and coordinators of the
  organization where it happens, and the HIS (``service``). Reading one: every role, walled
  per transport (staff of the organizations it concerns; the patient's own account sees
  where it stands); its FHIR Task: staff and services, not patients.
* The dispatcher's board and assigning by hand: coordinators (the service center) and the
  HIS; the board also the organization's admins (alliance admins any). Figures:
  coordinators, admins and services. The roster with each porter's duty and load
  (``GET /porters``): coordinators and admins.
* The porters' handheld: porters sign in with the ``nurse`` role (there is no porter role)
  and must be on their organization's roster; the steps: the assigned porter, or a
  coordinator (the dispatcher) in the porter's place. The roster: admins and the HIS.

World ids (``seed_transport.py``): ``transport_id``, a wheelchair escort of A's patient at
``h1``, assigned to ``matrix-nurse`` (the nurse role's matrix account, on h1's roster).
"""

from __future__ import annotations

from shared.principal import Role
from tests.security.matrix_rules import ADMIN, ALL, SERVICE, STAFF, Rule

R = "/v1/referrals"
T = f"{R}/transports"
TRANSPORT = f"{T}/{{transport_id}}"
REQUESTERS = frozenset({Role.NURSE, Role.DOCTOR, Role.COORDINATOR, Role.SERVICE})
DISPATCHERS = frozenset({Role.COORDINATOR, Role.SERVICE})
BOARD = ADMIN | {Role.COORDINATOR} | SERVICE
ROSTER_READERS = ADMIN | {Role.COORDINATOR}
FIGURES = ADMIN | {Role.COORDINATOR} | SERVICE
STEPPERS = frozenset({Role.NURSE, Role.COORDINATOR})
PORTERS = frozenset({Role.NURSE})
ORG_QUERY = {"org_id": "{org_id}"}
PORTER = "matrix-nurse"  # World.headers(Role.NURSE)'s subject
ESCORT = {
    "patient_id": "{patient_id}",
    "org_id": "{org_id}",
    "from": {"ward": "5W", "bed": "12", "zone": "matrix-zone"},
    "to": {"room": "CT-2"},
    "mode": "wheelchair",
}
ROSTER = [
    {
        "porter_id": PORTER,
        "org_id": "{org_id}",
        "name": "矩阵陪检员",
        "zones": ["matrix-zone"],
        "skills": ["stretcher", "oxygen"],
    }
]

TRANSPORT_RULES: list[Rule] = [
    Rule("POST", T, REQUESTERS, owned=True, body=ESCORT, why="for A's patient, at h1"),
    Rule("GET", T, BOARD, query=ORG_QUERY, why="the dispatcher's board"),
    Rule("GET", f"{T}/figures", FIGURES, query=ORG_QUERY),
    Rule("GET", TRANSPORT, ALL, owned=True, why="walled per transport; a patient: status only"),
    Rule("GET", f"{R}/fhir/Task/transport/{{transport_id}}", STAFF | SERVICE, owned=True),
    Rule(
        "POST",
        f"{TRANSPORT}/assign",
        DISPATCHERS,
        owned=True,
        body={"porter_id": PORTER, "reason": "matrix"},
    ),
    Rule(
        "POST",
        f"{TRANSPORT}/steps",
        STEPPERS,
        owned=True,
        body={"step": "accept"},
        why="the assigned porter, or the dispatcher in their place",
    ),
    Rule("POST", f"{TRANSPORT}/cancel", REQUESTERS, owned=True, body={"reason": "matrix"}),
    Rule("PUT", f"{R}/porters/me/duty", PORTERS, body={"on_duty": True, "zone": "matrix-zone"}),
    Rule("GET", f"{R}/porters/me/next", PORTERS),
    Rule("GET", f"{R}/porters", ROSTER_READERS, query=ORG_QUERY, why="the dispatcher's roster"),
    Rule("PUT", f"{R}/admin/porters", ADMIN | SERVICE, body=ROSTER),
]
