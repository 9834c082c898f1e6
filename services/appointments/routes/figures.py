"""Routes: the booking figures of an organization for the managers' dashboard
(``figures.py``): counts only, no patient data."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from services.appointments.domain import booking_rules
from services.appointments.domain.models import ORG_ID
from services.appointments.figures import AppointmentFigures
from services.appointments.routes.deps import PREFIX, Ctx
from shared.auth import require_roles
from shared.principal import Principal, Role
from shared.problems import Unprocessable, problem_responses_doc
from shared.scoping import asked_org

router = APIRouter(prefix=PREFIX, tags=["appointments: figures"])
FigureReaders = Annotated[
    Principal, Depends(require_roles(Role.ADMIN, Role.ALLIANCE_ADMIN, Role.SERVICE))
]
OrgQuery = Annotated[
    str | None, Query(pattern=ORG_ID, description="required of alliance admins and services")
]
DEFAULT_DAYS = 30
MAX_DAYS = 366


def period(date_from: date | None, date_to: date | None, today: date) -> tuple[date, date]:
    """``[date_from, date_to]`` (local dates, both included); by default the last 30 days."""
    last = date_to or today
    first = date_from or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last or (last - first).days >= MAX_DAYS:
        raise Unprocessable(
            "period_invalid",
            f"date_from must not be after date_to, and the period at most {MAX_DAYS} days",
            detail_zh="起止日期有误",
        )
    return first, last


@router.get(
    "/figures",
    summary="Booking figures of an organization over a period (default: the last 30 days)",
    description=(
        "Over the organization's local dates `[date_from, date_to]` (its booking policy's "
        "time zone): `bookings` made in the period by channel (app, hotline, onsite, "
        "referral), in total and per day (a move is not a new booking), and `cancellations` "
        "(how many of them were cancelled since); `today`: today's bookings by channel; "
        '`smart_booking_rate`: the self-service ("smart booking") rate = bookings through '
        "the app channel / all bookings of the period (null without bookings); `sessions`: "
        "the appointments of the sessions held in the period by outcome, and "
        "`no_show_rate` = no-shows / (checked in + no-shows) (null when none). "
        "Admins: their organization; alliance admins and services name one."
    ),
    responses=problem_responses_doc(403, 422),
)
async def figures(
    ctx: Ctx,
    principal: FigureReaders,
    org_id: OrgQuery = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> dict[str, Any]:
    org = asked_org(principal, org_id)
    now = datetime.now(UTC)
    counter = AppointmentFigures(ctx.db, ctx.policies)
    policy = await ctx.policies.for_org(org)
    first, last = period(date_from, date_to, booking_rules.clinic_date_of(now, policy.timezone))
    return await counter.figures(org, first, last, now)
