"""The declared access of the console's figures routes: the managers' dashboard.

The booking figures (counts only, no patient data): an organization's admins for their
own organization, the alliance admin and services for any one they name.
"""

from __future__ import annotations

from tests.security.matrix_rules import ADMIN_OR_SERVICE, Rule

ORG_QUERY = {"org_id": "{org_id}"}

FIGURES_RULES: list[Rule] = [
    Rule("GET", "/v1/appointments/figures", ADMIN_OR_SERVICE, query=ORG_QUERY),
]
