"""Risk flags raised by questionnaire answers: the doctors' and nurses' list, and
acknowledging one (the dashboards measure the time to acknowledge)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from services.followup.routes.deps import PREFIX, ClinicalStaff, Ctx, Limit, OrgQuery
from shared.access_reason import AccessReason
from shared.auth import require_roles
from shared.principal import Principal, Role
from shared.problems import problem_responses_doc

router = APIRouter(prefix=PREFIX, tags=["followup: risk flags"])

Clinicians = Annotated[Principal, Depends(require_roles(Role.DOCTOR, Role.NURSE))]


@router.get(
    "/risk-flags",
    summary="Risk flags of my organization: needing attention, urgent, then newest (audited)",
)
async def list_flags(
    ctx: Ctx,
    staff: ClinicalStaff,
    status: Literal["open", "acknowledged"] = "open",
    level: Literal["urgent", "high", "moderate"] | None = None,
    org_id: OrgQuery = None,
    limit: Limit = 100,
    reason: AccessReason = None,
) -> dict[str, Any]:
    items = await ctx.risk_flags.list_for(
        staff, org_id=org_id, status=status, level=level, limit=limit, reason=reason
    )
    return {"items": items}


class AcknowledgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=2000)


@router.post(
    "/risk-flags/{flag_id}/acknowledge",
    summary="A doctor or nurse of the organization saw the flag (once)",
    responses=problem_responses_doc(403, 404, 409),
)
async def acknowledge(
    ctx: Ctx, clinician: Clinicians, flag_id: str, body: AcknowledgeIn, reason: AccessReason = None
) -> dict[str, Any]:
    return await ctx.risk_flags.acknowledge(clinician, flag_id, body.note, reason)
