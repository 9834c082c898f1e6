"""The alliance's walls as one decision (shared/scoping.py)."""

from __future__ import annotations

import pytest

from shared.principal import Principal, Role
from shared.scoping import may_see_any_org, may_see_org, org_filter, sees_every_org

pytestmark = pytest.mark.unit


def who(*roles: Role, org: str | None = "h1") -> Principal:
    return Principal(subject="x", roles=frozenset(roles), org_id=org)


def test_staff_see_their_own_organization_only() -> None:
    for role in (Role.AGENT, Role.NURSE, Role.DOCTOR, Role.ADMIN, Role.COORDINATOR):
        assert may_see_org(who(role), "h1")
        assert not may_see_org(who(role), "h2")
        assert not may_see_org(who(role, org=None), "h1")  # no organization: nothing
        assert not may_see_org(who(role), None)


def test_coordinators_also_see_what_is_addressed_to_their_organization() -> None:
    referral = {"org_id": "clinic-7", "addressed": ("clinic-7", "h1")}
    assert may_see_org(who(Role.COORDINATOR), referral["org_id"], addressed=referral["addressed"])
    assert not may_see_org(who(Role.AGENT), referral["org_id"], addressed=referral["addressed"])
    assert not may_see_org(who(Role.COORDINATOR, org="h2"), "clinic-7", addressed=("h1",))


def test_alliance_admins_and_services_see_every_organization() -> None:
    for principal in (who(Role.ALLIANCE_ADMIN, org=None), who(Role.SERVICE, org=None)):
        assert sees_every_org(principal)
        assert may_see_org(principal, "h9")
        assert may_see_any_org(principal, [])
        assert org_filter(principal) is None
    assert not sees_every_org(who(Role.ADMIN))
    assert who(Role.ALLIANCE_ADMIN, org=None).has_any(Role.ADMIN)  # every admin power
    assert not who(Role.ADMIN).has_any(Role.ALLIANCE_ADMIN)


def test_patients_are_not_governed_by_organization_and_lists_are_confined() -> None:
    assert not may_see_org(who(Role.PATIENT), "h1")
    assert may_see_any_org(who(Role.NURSE), ["h2", "h1"])
    assert not may_see_any_org(who(Role.NURSE), ["h2"])
    assert org_filter(who(Role.AGENT)) == "h1"
    assert org_filter(who(Role.AGENT, org=None)) not in {None, "", "h1"}
