"""The declared access of the bed-arrangement routes (住院床位, appointments service).

* Wards, beds and the bed policy: the HIS (``service``) and admins, each organization's
  admin for its own (``shared.scoping``).
* An admission notice is issued by a doctor of the organization; read by any staff role
  of its organization (audited, with a reason), services and the patient's own account.
* Bed managers (the waiting list of notices, assign, candidates, housekeeping's
  "cleaned"): nurses (the head nurse / bed desk) and admins. The bed board
  (``GET /beds``): any staff role of the organization; the FHIR Location: staff and
  services; the figures: admins.
* A bed offer is confirmed or declined by the patient's account, or on the phone by a
  hotline agent or the bed desk (nurses, admins: the bed managers), with a reason, audited.

World ids (``seed_beds.py``): ``notice_id`` (A's patient, offered a bed), ``bed_offer_id``
(that offer) and ``bed_id`` (a free bed of ``h1``).
"""

from __future__ import annotations

from shared.principal import Role
from tests.security.matrix_rules import (
    ADMIN,
    ADMIN_OR_SERVICE,
    ALL,
    PATIENT,
    SERVICE,
    STAFF,
    Rule,
)

A = "/v1/appointments"
BED_MANAGERS = ADMIN | {Role.NURSE}
ANSWERERS = frozenset({Role.PATIENT, Role.AGENT}) | BED_MANAGERS
REASON = {"reason": "authorization matrix"}
ORG_QUERY = {"org_id": "{org_id}"}
NOTICE = {
    "patient_id": "{patient_id}",
    "episode_id": "matrix-second-episode",
    "department_code": "CARD",
    "diagnosis": {"code": "I20.0", "text": "心绞痛"},
    "expected_days": 3,
}
ASSIGN = {"bed_id": "{bed_id}", "come_at": "2030-01-07T08:00:00+08:00", "what_to_bring": "身份证"}

BED_RULES: list[Rule] = [
    Rule("PUT", f"{A}/admin/wards", ADMIN_OR_SERVICE),
    Rule("PUT", f"{A}/admin/beds", ADMIN_OR_SERVICE),
    # an invalid policy: the allowed callers' call must not replace the real one
    Rule(
        "PUT",
        f"{A}/admin/bed-policies/{{org_id}}",
        ADMIN_OR_SERVICE,
        body={"offer_minutes": 0},
        bola_body={},
    ),
    Rule(
        "POST",
        f"{A}/admission-notices",
        frozenset({Role.DOCTOR}),
        body=NOTICE,
        why="a doctor of the organization issues the notice (住院证)",
    ),
    Rule("GET", f"{A}/me/admission-notices", PATIENT),
    Rule(
        "GET",
        f"{A}/admission-notices",
        BED_MANAGERS,
        query={**ORG_QUERY, **REASON},
        why="the bed desk's waiting list (a reason, audited)",
    ),
    Rule("GET", f"{A}/admission-notices/{{notice_id}}", ALL, owned=True, query=REASON),
    Rule(
        "POST",
        f"{A}/admission-notices/{{notice_id}}/assign",
        BED_MANAGERS,
        owned=True,
        body=ASSIGN,
        why="bed managers; the seeded notice is already offered (409 for the allowed)",
    ),
    Rule(
        "GET",
        f"{A}/beds/candidates",
        BED_MANAGERS,
        owned=True,
        query={"notice_id": "{notice_id}", **REASON},
    ),
    Rule("POST", f"{A}/bed-offers/{{bed_offer_id}}/confirm", ANSWERERS, owned=True, query=REASON),
    Rule("POST", f"{A}/bed-offers/{{bed_offer_id}}/decline", ANSWERERS, owned=True, query=REASON),
    Rule("POST", f"{A}/beds/{{bed_id}}/cleaned", BED_MANAGERS, why="a free bed: 409"),
    Rule("GET", f"{A}/beds", STAFF, query=ORG_QUERY),
    Rule("GET", f"{A}/beds/figures", ADMIN, query=ORG_QUERY),
    Rule("GET", f"{A}/fhir/Location/{{bed_id}}", STAFF | SERVICE),
]
