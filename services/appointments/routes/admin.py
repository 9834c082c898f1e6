"""Master data and policy, for admins and the HIS integration."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path

from services.appointments.catalog import DepartmentIn, ResourceIn
from services.appointments.domain.models import ORG_ID
from services.appointments.domain.policy import BookingPolicy
from services.appointments.routes.deps import PREFIX, Admin, Ctx
from services.appointments.routes.models import PublishedSchedules, SavedIds
from services.appointments.schedule_requests import ScheduleIn
from shared.principal import Principal
from shared.scoping import ensure_org

router = APIRouter(prefix=f"{PREFIX}/admin", tags=["appointments: admin"])
OrgPath = Annotated[str, Path(pattern=ORG_ID)]


def check_org(principal: Principal, org_ids: set[str]) -> None:
    """Staff act on their own organization's data only; alliance admins and the HIS on
    every organization's (``shared.scoping``)."""
    for org_id in org_ids:
        ensure_org(principal, org_id)


@router.put(
    "/departments",
    summary="Create or update departments (bulk, from HIS)",
    response_model=SavedIds,
)
async def put_departments(
    ctx: Ctx, principal: Admin, items: Annotated[list[DepartmentIn], Body(max_length=500)]
) -> dict[str, Any]:
    check_org(principal, {i.org_id for i in items})
    return {"ids": await ctx.catalog.upsert_departments(items)}


@router.put(
    "/resources",
    summary="Create or update doctors and exam resources (bulk)",
    response_model=SavedIds,
)
async def put_resources(
    ctx: Ctx, principal: Admin, items: Annotated[list[ResourceIn], Body(max_length=2000)]
) -> dict[str, Any]:
    check_org(principal, {i.org_id for i in items})
    return {"ids": await ctx.catalog.upsert_resources(items)}


@router.post(
    "/schedules",
    status_code=201,
    summary="Publish schedules and their slots (bulk)",
    response_model=PublishedSchedules,
)
async def publish_schedules(
    ctx: Ctx, principal: Admin, items: Annotated[list[ScheduleIn], Body(max_length=1000)]
) -> dict[str, Any]:
    check_org(principal, {i.org_id for i in items})
    return {"schedules": await ctx.schedules.publish(items)}


@router.get("/policies/{org_id}", summary="The organization's booking policy")
async def get_policy(ctx: Ctx, principal: Admin, org_id: OrgPath) -> BookingPolicy:
    check_org(principal, {org_id})
    return await ctx.policies.for_org(org_id)


@router.put(
    "/policies/{org_id}",
    summary="Replace the organization's booking policy",
    description="A policy that cannot be applied is refused (422 `validation_error` for a "
    "field, `policy_invalid` for fields that contradict each other) and the previous one "
    "stays in force.",
)
async def put_policy(
    ctx: Ctx, principal: Admin, org_id: OrgPath, policy: BookingPolicy
) -> BookingPolicy:
    check_org(principal, {org_id})
    await ctx.policies.save(org_id, policy, principal.subject)
    return policy
