"""Routes: the staff's queue of appeals to decide (agents and admins, as for deciding)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from services.appointments.domain.models import ORG_ID
from services.appointments.penalties import Penalties
from services.appointments.routes.admin import check_org
from services.appointments.routes.deps import PREFIX, Ctx
from services.appointments.routes.models import AppealPage
from shared.access_reason import AccessReason
from shared.audit import require_reason
from shared.auth import require_roles
from shared.principal import Principal, Role
from shared.problems import problem_responses_doc

router = APIRouter(prefix=PREFIX, tags=["appointments: penalties"])

Deciders = Annotated[Principal, Depends(require_roles(Role.AGENT, Role.ADMIN))]


@router.get(
    "/staff/appeals",
    summary="Appeals waiting for a decision, oldest first (agents, admins; audited)",
    description="Staff of an organization see its appeals only (`org_id` defaults to "
    "theirs; another is 403 `forbidden_org`); alliance admins see all or pass `org_id`. "
    "Give a `reason` (query or `X-Access-Reason`). Pass `next_cursor` back as `cursor` "
    "for the next page; it is `null` on the last one.",
    responses=problem_responses_doc(400, 403),
    response_model=AppealPage,
)
async def staff_appeals(
    ctx: Ctx,
    staff: Deciders,
    status: Literal["pending", "approved", "rejected", "overridden"] = "pending",
    org_id: Annotated[str | None, Query(pattern=ORG_ID)] = None,
    cursor: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    reason: AccessReason = None,
) -> dict[str, Any]:
    require_reason(staff, reason, "the appeals")
    if org_id is not None:
        check_org(staff, {org_id})
    else:
        org_id = Penalties.scope_of(staff)
    return await ctx.appeals.page(
        staff, status=status, org_id=org_id, cursor=cursor, limit=limit, reason=reason
    )
