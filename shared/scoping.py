"""Who sees which organization's records: the alliance's walls, as one decision.

Many organizations (tertiary hospitals, community clinics) share one platform. A record
belongs to the organization that holds it (an appointment to the hospital whose session
it is, a message to the organization it speaks for). The rules (docs/architecture.md §8):

* staff see and change records of their own organization (the token's ``org``), and a
  staff token without an organization sees no organization's records;
* referral coordinators also see the patients and cases addressed to or from their
  organization (``addressed``: the organizations a referral connects);
* an organization admin sees only that organization's audit log;
* an alliance admin (``alliance_admin``) and service callers (the HIS, other services)
  see every organization; their reads are audited like anyone's.

Patient accounts are not governed here: they reach the patients they manage, wherever
those patients are treated (ownership checks elsewhere). Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.principal import Principal, Role
from shared.problems import Forbidden, Unprocessable


def sees_every_org(principal: Principal) -> bool:
    """Alliance admins and service callers: not confined to one organization."""
    return principal.has_any(Role.ALLIANCE_ADMIN, Role.SERVICE)


def may_see_org(
    principal: Principal, org_id: str | None, *, addressed: Iterable[str | None] = ()
) -> bool:
    """May this staff or service caller see a record held by ``org_id``?

    ``addressed``: further organizations the record concerns (a referral's sender and
    receiver); they count for referral coordinators only.
    """
    if sees_every_org(principal):
        return True
    own = principal.org_id
    if not principal.is_staff or own is None:
        return False
    if org_id == own:
        return True
    return Role.COORDINATOR in principal.roles and own in set(addressed)


def may_see_any_org(principal: Principal, org_ids: Iterable[str | None]) -> bool:
    """A patient reached through organizations (where they booked, were seen, referred):
    visible to staff of any one of them."""
    if sees_every_org(principal):
        return True
    return principal.org_id is not None and principal.org_id in set(org_ids)


def org_filter(principal: Principal) -> str | None:
    """The one organization a list query is confined to; ``None`` means every one.

    Staff without an organization are confined to an organization no record holds.
    """
    if sees_every_org(principal):
        return None
    return principal.org_id or "\x00no-organization"


def other_org() -> Forbidden:
    """403 for a staff member reaching another organization's record by a shared id."""
    return Forbidden(
        "forbidden_org",
        "This record belongs to another organization of the alliance.",
        detail_zh="该记录属于医联体内的其他机构，您无权访问。",
    )


def ensure_org(principal: Principal, org_id: str | None) -> None:
    """403 ``forbidden_org`` unless the caller may act on ``org_id``'s records."""
    if not may_see_org(principal, org_id):
        raise other_org()


def asked_org(principal: Principal, org_id: str | None) -> str:
    """The organization a read of figures is about: staff their own (403
    ``forbidden_org`` for another); alliance admins and services name one (422
    ``org_id_required``)."""
    if sees_every_org(principal):
        if not org_id:
            raise Unprocessable(
                "org_id_required", "name the organization: org_id", detail_zh="请指定机构"
            )
        return org_id
    own = principal.org_id
    if own is None or (org_id is not None and org_id != own):
        raise other_org()
    return own
