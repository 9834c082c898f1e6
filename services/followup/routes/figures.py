"""The follow-up dashboard of an organization: plans, tasks, reach, risk flags,
satisfaction and complaints over a period (``figures.py``); audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter
from pydantic import AwareDatetime

from services.followup.routes.deps import PREFIX, Admins, Ctx, OrgQuery
from shared.access_reason import AccessReason
from shared.domain_errors import Invalid
from shared.principal import Principal
from shared.problems import problem_responses_doc
from shared.scoping import other_org, sees_every_org

router = APIRouter(prefix=PREFIX, tags=["followup: figures"])
DEFAULT_DAYS = 30


def org_in_scope(principal: Principal, org_id: str | None) -> str:
    """The organization asked about: staff their own (403 for another); alliance admins
    and services name one (422 ``org_id_required``)."""
    if sees_every_org(principal):
        if not org_id:
            raise Invalid(
                "org_id_required", "name the organization: org_id", detail_zh="请指定机构"
            )
        return org_id
    own = principal.org_id
    if own is None or (org_id is not None and org_id != own):
        raise other_org()
    return own


def period(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """``[since, until)``; by default the last 30 days up to now."""
    end = until or datetime.now(UTC)
    start = since or end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise Invalid("period_invalid", "since must be before until", detail_zh="起止时间有误")
    return start, end


@router.get(
    "/figures",
    summary="The follow-up dashboard of an organization over a period (default: 30 days)",
    responses=problem_responses_doc(403, 422),
)
async def figures(
    ctx: Ctx,
    admin: Admins,
    org_id: OrgQuery = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    reason: AccessReason = None,
) -> dict[str, Any]:
    org = org_in_scope(admin, org_id)
    start, end = period(since, until)
    return await ctx.figures.dashboard(admin, org, start, end, reason)
