"""The porters' handheld API (on or off duty, the next job) and the roster's bulk upkeep.

A porter signs in with the ``nurse`` role and must be on the roster of the token's
organization (``porters.py``); the steps of a job are ``POST .../transports/{id}/steps``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query

from services.referrals.domain.transport_request import DutyIn
from services.referrals.porters import NAME, PorterIn
from services.referrals.routes.deps import PREFIX, Ctx
from shared.auth import require_roles
from shared.principal import Principal, Role
from shared.problems import Unprocessable
from shared.scoping import org_filter

router = APIRouter(prefix=PREFIX, tags=["referrals: porters"])
Porter = Annotated[Principal, Depends(require_roles(Role.NURSE))]
# the dispatcher (a coordinator of the organization) and its admins; alliance admins any
RosterReader = Annotated[Principal, Depends(require_roles(Role.COORDINATOR, Role.ADMIN))]
RosterKeeper = Annotated[
    Principal, Depends(require_roles(Role.ADMIN, Role.ALLIANCE_ADMIN, Role.SERVICE))
]


@router.get(
    "/porters",
    summary="The organization's porters and crews: skills, on duty, zone and live job count",
    description="Coordinators (the dispatchers) and admins of the organization; alliance "
    "admins name any `org_id`. `zone`: those working in it (on duty there, or off duty "
    "and covering it); `on_duty`: only those on (or off) duty. On duty first, then by name.",
)
async def list_porters(
    ctx: Ctx,
    principal: RosterReader,
    org_id: Annotated[str | None, Query(pattern=NAME)] = None,
    zone: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
    on_duty: bool | None = None,
) -> dict[str, Any]:
    org = org_id or org_filter(principal)
    if org is None:
        raise Unprocessable(
            "org_required", "name the organization (org_id)", detail_zh="请指定机构"
        )
    return {"items": await ctx.roster.listing(principal, org, zone, on_duty)}


@router.put("/porters/me/duty", summary="Go on duty (in a zone) or off duty")
async def duty(ctx: Ctx, principal: Porter, body: DutyIn) -> dict[str, Any]:
    return await ctx.dispatcher.duty(principal, on_duty=body.on_duty, zone=body.zone)


@router.get("/porters/me/next", summary="My live jobs, the one due first as next")
async def next_job(ctx: Ctx, principal: Porter) -> dict[str, Any]:
    return await ctx.dispatcher.next_jobs(principal)


@router.put("/admin/porters", summary="Add or change porters and ambulance crews (bulk)")
async def save_porters(
    ctx: Ctx,
    principal: RosterKeeper,
    body: Annotated[list[PorterIn], Body(max_length=500)],
) -> dict[str, Any]:
    return {"items": await ctx.roster.save(principal, body)}
