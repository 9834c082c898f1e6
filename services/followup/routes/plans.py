"""Follow-up plans: staff read a plan with its tasks and end one early; a patient's plans;
do-not-contact."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from services.followup.bootstrap import Followup
from services.followup.routes.deps import PREFIX, Caller, ClinicalStaff, Ctx
from services.followup.staff_access import ensure_followup_staff
from shared.access_reason import AccessReason
from shared.audit import require_reason
from shared.auth import ensure_patient_access
from shared.outbox import Tx
from shared.principal import Principal, Role
from shared.problems import problem_responses_doc
from shared.scoping import other_org, sees_every_org

router = APIRouter(prefix=PREFIX, tags=["followup: plans"])


@router.get(
    "/plans/{plan_id}",
    summary="A plan with its tasks (staff of its organization; audited)",
    responses=problem_responses_doc(403, 404),
)
async def get_plan(
    ctx: Ctx, staff: ClinicalStaff, plan_id: str, reason: AccessReason = None
) -> dict[str, Any]:
    require_reason(staff, reason, "a patient's follow-up plan")
    return await ctx.plans.view_for(staff, plan_id, reason)


class EndIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Literal["readmitted", "deceased", "cancelled"]
    detail: str = Field(min_length=1, max_length=500)


@router.post(
    "/plans/{plan_id}/end",
    summary="End a plan early (readmitted, deceased, cancelled); its open tasks are cancelled",
    responses=problem_responses_doc(403, 404, 409, 422),
)
async def end_plan(ctx: Ctx, staff: ClinicalStaff, plan_id: str, body: EndIn) -> dict[str, Any]:
    async def work(tx: Tx) -> dict[str, Any]:
        return await ctx.plans.end_by_staff(staff, plan_id, body.reason, body.detail, tx)

    return await ctx.outbox.transaction(work)


async def _may_reach_patient(ctx: Followup, caller: Principal, patient_id: str) -> None:
    """A patient account: the patients it manages; staff: patients with a plan at their
    organization; alliance admins and services: anyone."""
    if caller.has_any(Role.PATIENT):
        if patient_id not in caller.patient_ids and not await ctx.patients.manages(
            caller.subject, patient_id
        ):
            ensure_patient_access(caller, patient_id)
        return
    ensure_followup_staff(caller)
    if sees_every_org(caller):
        return
    if not caller.is_staff or not await ctx.plans.for_patient(caller, patient_id):
        raise other_org()


@router.get(
    "/patients/{patient_id}/plans",
    summary="A patient's plans (the patient's account; staff of their organization, audited)",
    responses=problem_responses_doc(403),
)
async def patient_plans(
    ctx: Ctx, caller: Caller, patient_id: str, reason: AccessReason = None
) -> dict[str, Any]:
    require_reason(caller, reason, "a patient's follow-up plans")
    await _may_reach_patient(ctx, caller, patient_id)
    await ctx.audit.record(
        caller,
        "followup.plan.list",
        patient_id=patient_id,
        resource=f"patient:{patient_id}",
        reason=reason,
    )
    return {"items": await ctx.plans.for_patient(caller, patient_id)}


class DoNotContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=500)


@router.put(
    "/patients/{patient_id}/do-not-contact",
    summary="The patient asked not to be called or messaged by follow-up (audited)",
    responses=problem_responses_doc(403, 422),
)
async def set_do_not_contact(
    ctx: Ctx, caller: Caller, patient_id: str, body: DoNotContactIn, reason: AccessReason = None
) -> dict[str, Any]:
    require_reason(caller, reason, "a patient's contact wishes")
    await _may_reach_patient(ctx, caller, patient_id)
    doc = await ctx.dnc.set(caller, patient_id, body.note, reason)
    return {"patient_id": patient_id, "do_not_contact": True, "tasks_skipped": doc["tasks_skipped"]}


@router.delete(
    "/patients/{patient_id}/do-not-contact",
    summary="Contact the patient again (audited)",
    responses=problem_responses_doc(403),
)
async def clear_do_not_contact(
    ctx: Ctx, caller: Caller, patient_id: str, reason: AccessReason = None
) -> dict[str, Any]:
    require_reason(caller, reason, "a patient's contact wishes")
    await _may_reach_patient(ctx, caller, patient_id)
    await ctx.dnc.clear(caller, patient_id, reason)
    return {"patient_id": patient_id, "do_not_contact": False}
