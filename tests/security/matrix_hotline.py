"""The declared access of the console's hotline routes (appointments service).

* Finding a patient (search by phone, national ID or exact name) and reading one: every
  staff role, with a reason, audited, among the patients of their organization.
* Registering a caller or visitor who has no record: the hotline's agents, the desk's
  nurses and admins (with a reason, audited).
* Telling of an incoming call: the telephony integration (``service``) and admins. Its
  pop (the stream per extension, and one call by id): agents and admins of the call's
  organization.

World ids (``seed_hotline.py``): ``call_id`` (a call to ``h1`` from A's patient's phone).
"""

from __future__ import annotations

from shared.principal import Role
from tests.factories import make_national_id, make_phone
from tests.security.matrix_rules import ADMIN, ADMIN_OR_SERVICE, STAFF, Rule

A = "/v1/appointments"
REASON = {"reason": "authorization matrix"}
AGENTS = ADMIN | {Role.AGENT}
REGISTRARS = ADMIN | {Role.AGENT, Role.NURSE}
NEW_PATIENT = {"name": "柳叶青", "national_id": make_national_id(seed=17), "phone": make_phone(17)}
CALL = {
    "call_id": "matrix-call-allowed",
    "caller_number": "13800000000",
    "extension": "8001",
    "org_id": "{org_id}",
}

HOTLINE_RULES: list[Rule] = [
    Rule(
        "POST",
        f"{A}/staff/patients/search",
        STAFF,
        query=REASON,
        body={"national_id": "{national_id}"},
        why="staff find patients of their own organization only (masked, audited)",
    ),
    Rule("GET", f"{A}/staff/patients/{{patient_id}}", STAFF, owned=True, query=REASON),
    Rule(
        "POST",
        f"{A}/staff/patients",
        REGISTRARS,
        query=REASON,
        body=NEW_PATIENT,
        why="the hotline and the desk register a caller or visitor who has no record",
    ),
    Rule("POST", f"{A}/staff/calls", ADMIN_OR_SERVICE, body=CALL, why="the telephony (CTI)"),
    Rule("GET", f"{A}/staff/calls/stream", AGENTS, query={"extension": "8001"}, stream=True),
    Rule("GET", f"{A}/staff/calls/{{call_id}}", AGENTS, owned=True),
]
