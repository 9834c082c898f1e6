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
from shared.problems import problem_responses_doc
from shared.scoping import asked_org

router = APIRouter(prefix=PREFIX, tags=["followup: figures"])
DEFAULT_DAYS = 30


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
    org = asked_org(admin, org_id)
    start, end = period(since, until)
    return await ctx.figures.dashboard(admin, org, start, end, reason)
