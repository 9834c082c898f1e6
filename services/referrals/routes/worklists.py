"""Lists of referrals: a coordinator's incoming worklist, a doctor's outgoing list, a
patient's own referrals, and the dashboard's figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from services.referrals.domain.directory import Direction, Urgency
from services.referrals.domain.workflow import TaskStatus
from services.referrals.routes.deps import PREFIX, Ctx
from shared.access_reason import AccessReason
from shared.audit import require_reason
from shared.auth import require_roles
from shared.principal import STAFF_ROLES, Principal, Role

router = APIRouter(prefix=PREFIX, tags=["referrals: worklists"])
ReferralStaff = Annotated[
    Principal,
    Depends(require_roles(Role.COORDINATOR, Role.DOCTOR, Role.ALLIANCE_ADMIN, Role.SERVICE)),
]
FigureReaders = Annotated[
    Principal,
    Depends(require_roles(Role.COORDINATOR, Role.ADMIN, Role.ALLIANCE_ADMIN, Role.SERVICE)),
]
NoticeReaders = Annotated[Principal, Depends(require_roles(Role.COORDINATOR, Role.DOCTOR))]
Staff = Annotated[Principal, Depends(require_roles(*STAFF_ROLES))]
PatientAccount = Annotated[Principal, Depends(require_roles(Role.PATIENT))]
OrgQuery = Annotated[str | None, Query(max_length=64, description="alliance admins, services")]
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/worklists/incoming", summary="Cases routed to the organization, SLA first")
async def incoming(
    ctx: Ctx,
    principal: ReferralStaff,
    org_id: OrgQuery = None,
    status: TaskStatus | None = None,
    urgency: Urgency | None = None,
    direction: Direction | None = None,
    department_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    items = await ctx.worklists.incoming(
        principal,
        org_id=org_id,
        status=status,
        urgency=urgency,
        direction=direction,
        department_id=department_id,
        limit=limit,
    )
    return {"items": items}


@router.get("/worklists/outgoing", summary="Cases the organization (or I) referred")
async def outgoing(
    ctx: Ctx,
    principal: ReferralStaff,
    org_id: OrgQuery = None,
    mine: bool = False,
    status: TaskStatus | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    items = await ctx.worklists.outgoing(
        principal, org_id=org_id, mine=mine, status=status, limit=limit
    )
    return {"items": items}


@router.get("/me/referrals", summary="The referrals of the patients I manage")
async def my_referrals(ctx: Ctx, principal: PatientAccount, limit: Limit = 50) -> dict[str, Any]:
    patients = set(principal.patient_ids) | await ctx.patients.managed_by(principal.subject)
    return {"items": await ctx.worklists.for_patient(patients, limit)}


@router.get(
    "/patients/{patient_id}/referrals",
    summary="A patient's referrals the caller's organization sent or holds (staff, audited)",
    description="Newest first, as summaries; the alliance admin sees every one. A reason "
    "is required (query `reason` or X-Access-Reason). 404 `patient_not_found`; 403 "
    "`forbidden_org` for a patient who is none of the organization's.",
)
async def patient_referrals(
    ctx: Ctx,
    principal: Staff,
    patient_id: Annotated[str, Path(pattern=r"^[\w.:-]{1,64}$")],
    reason: AccessReason = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    require_reason(principal, reason, "a patient's referrals")
    items = await ctx.worklists.of_patient(principal, patient_id, reason=reason, limit=limit)
    return {"items": items}


class ReadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[Annotated[str, Field(max_length=64)]] = Field(max_length=500)


@router.get("/notices", summary="My referral notices (doctors: mine; coordinators: the desk's)")
async def notices(
    ctx: Ctx, principal: NoticeReaders, unread: bool = False, limit: Limit = 100
) -> dict[str, Any]:
    return {"items": await ctx.notices.list_for(principal, unread_only=unread, limit=limit)}


@router.post("/notices/read", summary="Mark my notices read")
async def read_notices(ctx: Ctx, principal: NoticeReaders, body: ReadIn) -> dict[str, int]:
    return {"marked": await ctx.notices.mark_read(principal, body.ids)}


@router.get("/figures", summary="Referral figures of an organization for a period")
async def figures(
    ctx: Ctx,
    principal: FigureReaders,
    org_id: OrgQuery = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    until = until or datetime.now(UTC)
    since = since or until - timedelta(days=30)
    return await ctx.worklists.figures(principal, org_id=org_id, since=since, until=until)
