"""The declared access of the referrals service's directory routes (``routes/directory.py``).

* Reading the alliance's directory (organizations, relationships): every staff role and
  service callers; it is the alliance's shared directory, not patient data, so staff of
  any organization read every organization (office phones are shown to staff only).
  Patients: 403.
* Bulk upserts of organizations: organization admins (their own existing organization's
  name, departments, contacts and intake only, checked per item), the alliance's admin and
  the HIS. New organizations, levels, kinds, regions and alliances: alliance admin and HIS.
* Intake settings: the organization's admin and coordinators (their own organization), the
  alliance's admin and the HIS.
* Relationships (create, change, remove): the alliance's admin and the HIS only.

Bodies are empty lists where the route takes a list, so an allowed caller's call is valid
and changes nothing.

Placeholders: ``{org_id}`` (A's organization: its staff alone may change its intake, while
the read of one organization is ``org_walled=False``); the DELETE route also needs
``{from_org_id}``, ``{to_org_id}`` and ``{direction}`` in ``World.ids`` (e.g. ``h1``,
``h2``, ``upward``: a relationship that need not exist, 404 for the allowed callers).
"""

from __future__ import annotations

from shared.principal import Role
from tests.security.matrix_rules import ADMIN, ADMIN_OR_SERVICE, SERVICE, STAFF, Rule

R = "/v1/referrals"
READERS = STAFF | SERVICE
INTAKE_KEEPERS = ADMIN | SERVICE | {Role.COORDINATOR}
ALLIANCE_OR_SERVICE = SERVICE | {Role.ALLIANCE_ADMIN}

DIRECTORY_RULES: list[Rule] = [
    Rule(
        "PUT",
        f"{R}/admin/organizations",
        ADMIN_OR_SERVICE,
        body=[],
        why="an organization's admin keeps its own organization; structure is the alliance's",
    ),
    Rule("GET", f"{R}/organizations", READERS, why="the alliance's shared directory"),
    Rule(
        "GET",
        f"{R}/organizations/{{org_id}}",
        READERS,
        org_walled=False,
        why="the alliance's shared directory: not walled by organization",
    ),
    Rule(
        "PUT",
        f"{R}/organizations/{{org_id}}/intake",
        INTAKE_KEEPERS,
        why="coordinators open and close their own organization's intake",
    ),
    Rule("PUT", f"{R}/admin/relationships", ALLIANCE_OR_SERVICE, body=[]),
    Rule("GET", f"{R}/relationships", READERS, query={"org_id": "{org_id}"}),
    Rule(
        "DELETE",
        f"{R}/admin/relationships/{{from_org_id}}/{{to_org_id}}/{{direction}}",
        ALLIANCE_OR_SERVICE,
    ),
]
