"""Who of the staff works with follow-up's patient data: the hotline's agents, nurses,
doctors and admins (and the alliance admin, services). Referral coordinators do not: they
see referrals, not follow-up plans, answers or contact wishes."""

from __future__ import annotations

from shared.principal import Principal, Role
from shared.problems import Forbidden

FOLLOWUP_STAFF: tuple[Role, ...] = (
    Role.AGENT,
    Role.NURSE,
    Role.DOCTOR,
    Role.ADMIN,
    Role.ALLIANCE_ADMIN,
    Role.SERVICE,
)


def ensure_followup_staff(principal: Principal) -> None:
    """403 ``forbidden_role`` for a staff member outside :data:`FOLLOWUP_STAFF`."""
    if not principal.has_any(*FOLLOWUP_STAFF):
        raise Forbidden(
            "forbidden_role",
            "Follow-up data is for agents, nurses, doctors and admins.",
            detail_zh="您没有查看随访信息的权限。",
        )
