"""The vocabulary of the authorization matrix: one :class:`Rule` per route, and role sets.

Placeholders such as ``{patient_id}`` in paths, queries and bodies stand for patient
account A's real ids (``tests/security/conftest.py`` fills ``World.ids``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared.principal import STAFF_ROLES, Role

ALL: frozenset[Role] = frozenset(Role)
STAFF: frozenset[Role] = STAFF_ROLES
PATIENT: frozenset[Role] = frozenset({Role.PATIENT})
# an alliance admin holds every power of an organization's admin, over every organization
ADMIN: frozenset[Role] = frozenset({Role.ADMIN, Role.ALLIANCE_ADMIN})
SERVICE: frozenset[Role] = frozenset({Role.SERVICE})
ADMIN_OR_SERVICE: frozenset[Role] = ADMIN | SERVICE
PATIENT_OR_STAFF: frozenset[Role] = PATIENT | STAFF
# who books, cancels, moves and waitlists for a patient: the patient's own account, a
# hotline agent (on the phone) or an on-site nurse; doctors add extra numbers instead,
# coordinators book from the referral quota through events, admins manage master data.
BOOKERS: frozenset[Role] = frozenset({Role.PATIENT, Role.AGENT, Role.NURSE})


class Public(StrEnum):
    NO = ""
    OPEN = "open"  # health and metrics: no credentials at all
    SIGNED = "signed"  # provider callbacks: their own token/signature instead of a JWT


@dataclass(frozen=True)
class Rule:
    """Who may call ``method path``.

    ``roles``: the roles allowed (every other role must get 403). ``owned``: the call
    carries a patient's resource ids, so patient account B using A's ids must get 403 or
    404 and none of A's data. ``body``/``query``: sent by every caller (``None`` = ``{}``
    for POST/PUT/PATCH); ``bola_body`` replaces ``body`` for B, so that B's request is
    valid and only ownership can refuse it. ``allowed_ids`` swaps placeholders for the
    allowed callers' calls of a destructive route (e.g. a spare patient to unlink).
    """

    method: str
    path: str
    roles: frozenset[Role] = frozenset()
    public: Public = Public.NO
    owned: bool = False
    body: Any = None
    bola_body: Any = None
    query: Mapping[str, str] = field(default_factory=dict)
    allowed_ids: Mapping[str, str] = field(default_factory=dict)
    stream: bool = False
    why: str = ""
    # a route naming ``{org_id}`` reaches that organization's records (staff of another
    # organization get 403/404) unless this is False: the alliance's shared directory
    org_walled: bool = True

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)

    def label(self, service: str) -> str:
        return f"{service}:{self.method} {self.path}"


def health_rules() -> list[Rule]:
    """Liveness, readiness and Prometheus metrics: unauthenticated by design (probes and the
    scraper have no JWT); the gateway does not route them, and they carry no patient data."""
    why = "probe/scrape endpoint, no patient data; not routed by the gateway"
    return [
        Rule("GET", p, public=Public.OPEN, why=why) for p in ("/healthz", "/readyz", "/metrics")
    ]


def ops_rules(service: str) -> list[Rule]:
    """Dead letters (event payloads hold patient data), the outbox, re-encrypting PII under
    the active key and the audit log: admins only."""
    base = f"/v1/{service}/ops"
    return [
        Rule("GET", f"{base}/dead-letters", ADMIN),
        Rule("POST", f"{base}/dead-letters/{{dead_letter_id}}/replay", ADMIN),
        Rule("GET", f"{base}/outbox", ADMIN),
        Rule("POST", f"{base}/pii/rotate", ADMIN, query={"limit": "1"}),
        Rule("GET", f"/v1/{service}/admin/audit", ADMIN, query={"reason": "matrix"}),
    ]
