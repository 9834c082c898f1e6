"""The porters' handheld API (on or off duty, the next job) and the roster's bulk upkeep.

A porter signs in with the ``nurse`` role and must be on the roster of the token's
organization (``porters.py``); the steps of a job are ``POST .../transports/{id}/steps``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from services.referrals.domain.transport_request import DutyIn
from services.referrals.porters import PorterIn
from services.referrals.routes.deps import PREFIX, Ctx
from shared.auth import require_roles
from shared.principal import Principal, Role

router = APIRouter(prefix=PREFIX, tags=["referrals: porters"])
Porter = Annotated[Principal, Depends(require_roles(Role.NURSE))]
RosterKeeper = Annotated[
    Principal, Depends(require_roles(Role.ADMIN, Role.ALLIANCE_ADMIN, Role.SERVICE))
]


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
