"""Search departments, doctors, exam resources and availability (served from caches)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.appointments.domain.models import ORG_ID, ResourceKind
from services.appointments.routes.deps import PREFIX, Caller, Ctx
from services.appointments.routes.models import (
    DepartmentView,
    ResourceView,
    SessionView,
    SlotView,
)
from services.appointments.views import session_view
from shared.problems import Unprocessable

router = APIRouter(prefix=PREFIX, tags=["appointments: catalog"])
OrgId = Annotated[str, Query(pattern=ORG_ID)]


@router.get(
    "/departments",
    summary="Departments of an organization",
    response_model=list[DepartmentView],
)
async def departments(ctx: Ctx, _: Caller, org_id: OrgId) -> list[dict[str, Any]]:
    return await ctx.catalog.departments(org_id)


@router.get(
    "/doctors",
    summary="Doctors and exam resources, by department",
    response_model=list[ResourceView],
)
async def doctors(
    ctx: Ctx,
    _: Caller,
    org_id: OrgId,
    department_id: Annotated[str | None, Query(max_length=90)] = None,
    kind: ResourceKind | None = None,
) -> list[dict[str, Any]]:
    return await ctx.catalog.resources(org_id, department_id, kind)


@router.get(
    "/schedules",
    summary="Sessions with their remaining slots per pool",
    response_model=list[SessionView],
)
async def schedules(
    ctx: Ctx,
    _: Caller,
    org_id: OrgId,
    department_id: Annotated[str | None, Query(max_length=90)] = None,
    resource_id: Annotated[str | None, Query(max_length=90)] = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> list[dict[str, Any]]:
    start = date_from or datetime.now(UTC).date()
    end = date_to or start + timedelta(days=14)
    if end < start or (end - start).days > 31:
        raise Unprocessable("date_range_invalid", "date_to must be within 31 days after date_from")
    out = []
    for doc in await ctx.schedules.search(
        org_id=org_id,
        department_id=department_id,
        resource_id=resource_id,
        date_from=start,
        date_to=end,
    ):
        out.append(session_view(doc, await ctx.schedules.availability(doc["_id"])))
    return out


@router.get(
    "/schedules/{schedule_id}/slots",
    summary="Numbered slots of a session",
    response_model=list[SlotView],
)
async def slots(ctx: Ctx, _: Caller, schedule_id: str) -> list[dict[str, Any]]:
    return await ctx.schedules.slots(schedule_id)
