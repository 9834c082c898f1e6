"""Routes: Penalties: patients appeal a ban; staff decide appeals or override with a reason."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from services.appointments.domain.models import ORG_ID
from services.appointments.routes.admin import check_org
from services.appointments.routes.deps import PREFIX, Caller, Ctx, PatientAccount
from services.appointments.routes.models import AppealView, BookingStatus, OverrideResult
from shared.access_reason import AccessReason
from shared.audit import require_reason
from shared.auth import require_roles
from shared.principal import Principal, Role
from shared.problems import problem_responses_doc

router = APIRouter(prefix=PREFIX, tags=["appointments: penalties"])

Deciders = Annotated[Principal, Depends(require_roles(Role.AGENT, Role.ADMIN))]
AdminOnly = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
OrgQuery = Annotated[
    str | None, Query(pattern=ORG_ID, description="only this organization (default: every one)")
]


class AppealIn(BaseModel):
    reason: str = Field(min_length=2, max_length=500)
    # the organization of the ban; needed only when the patient is banned at several
    org_id: str | None = Field(None, pattern=ORG_ID)


class DecisionIn(BaseModel):
    approve: bool
    note: str = Field(min_length=2, max_length=500)


class OverrideIn(BaseModel):
    reason: str = Field(min_length=5, max_length=500)
    org_id: str | None = Field(None, pattern=ORG_ID)  # as for an appeal


@router.get(
    "/patients/{patient_id}/booking-status",
    summary="Offences in the current windows, the ban if any, and an open appeal",
    responses=problem_responses_doc(400, 403, 404),
    response_model=BookingStatus,
)
async def booking_status(
    ctx: Ctx,
    caller: Caller,
    patient_id: str,
    org_id: OrgQuery = None,
    reason: AccessReason = None,
) -> dict[str, Any]:
    """Staff give a ``reason`` (query or ``X-Access-Reason``): their read is audited."""
    require_reason(caller, reason, "a booking status")
    if org_id is not None and caller.is_staff:
        check_org(caller, {org_id})
    return await ctx.penalties.status(caller, patient_id, org_id, reason=reason)


@router.post(
    "/patients/{patient_id}/appeals",
    status_code=201,
    summary="Appeal a booking ban (the patient's own account)",
    responses=problem_responses_doc(403, 404, 409),
    response_model=AppealView,
)
async def appeal(
    ctx: Ctx, caller: PatientAccount, patient_id: str, body: AppealIn
) -> dict[str, Any]:
    return await ctx.penalties.appeal(caller, patient_id, reason=body.reason, org_id=body.org_id)


@router.post(
    "/appeals/{appeal_id}/decision",
    summary="Approve (lifts the ban) or reject an appeal (agents, admins; audited)",
    responses=problem_responses_doc(403, 404, 409),
    response_model=AppealView,
)
async def decide(ctx: Ctx, staff: Deciders, appeal_id: str, body: DecisionIn) -> dict[str, Any]:
    appeal = await ctx.penalties.get_appeal(appeal_id)
    check_org(staff, {appeal["org_id"]})
    return await ctx.penalties.decide(staff, appeal, approve=body.approve, note=body.note)


@router.post(
    "/patients/{patient_id}/ban-override",
    summary="Lift a patient's booking ban with a reason (admins; audited)",
    responses=problem_responses_doc(403, 404, 409),
    response_model=OverrideResult,
)
async def ban_override(
    ctx: Ctx, admin: AdminOnly, patient_id: str, body: OverrideIn
) -> dict[str, Any]:
    if body.org_id is not None:
        check_org(admin, {body.org_id})
    return await ctx.penalties.override(admin, patient_id, reason=body.reason, org_id=body.org_id)
