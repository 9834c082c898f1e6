"""The hotline's call list: due calls in risk order, claims, attempts; the nurses'
escalations of patients no call reached."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.followup.domain.calls import Outcome
from services.followup.domain.plan_template import Priority
from services.followup.plans import task_view
from services.followup.routes.deps import PREFIX, CallStaff, Ctx, Limit, OrgQuery
from services.followup.tasks import AttemptIn
from shared.access_reason import AccessReason
from shared.problems import problem_responses_doc

router = APIRouter(prefix=PREFIX, tags=["followup: call list"])


@router.get("/call-list", summary="Due follow-up calls of my organization, highest risk first")
async def call_list(
    ctx: Ctx,
    staff: CallStaff,
    org_id: OrgQuery = None,
    department_id: Annotated[str | None, Query(max_length=64)] = None,
    priority: Priority | None = None,
    due_before: datetime | None = None,
    mine: bool = False,
    limit: Limit = 100,
    reason: AccessReason = None,
) -> dict[str, Any]:
    items = await ctx.call_list.due(
        staff,
        org_id=org_id,
        department_id=department_id,
        priority=priority.value if priority else None,
        due_before=due_before,
        mine=mine,
        limit=limit,
        reason=reason,
    )
    return {"items": items}


@router.get("/escalations", summary="Patients no call reached: for the nurses")
async def escalations(
    ctx: Ctx,
    staff: CallStaff,
    org_id: OrgQuery = None,
    limit: Limit = 100,
    reason: AccessReason = None,
) -> dict[str, Any]:
    return {
        "items": await ctx.call_list.escalations(staff, org_id=org_id, limit=limit, reason=reason)
    }


@router.get("/tasks/{task_id}", summary="One task", responses=problem_responses_doc(403, 404))
async def get_task(
    ctx: Ctx, staff: CallStaff, task_id: str, reason: AccessReason = None
) -> dict[str, Any]:
    task = await ctx.tasks.get_for(staff, task_id)
    await ctx.audit.record(
        staff,
        "followup.task.read",
        patient_id=task["patient_id"],
        resource=f"task:{task_id}",
        reason=reason,
        org_id=task["org_id"],
    )
    return task_view(task)


@router.post(
    "/tasks/{task_id}/claim",
    summary="Hold a due call for me (a lease of claim_minutes); nobody else records on it",
    responses=problem_responses_doc(403, 404, 409),
)
async def claim(
    ctx: Ctx, staff: CallStaff, task_id: str, reason: AccessReason = None
) -> dict[str, Any]:
    return task_view(await ctx.tasks.claim(staff, task_id, reason))


@router.post(
    "/tasks/{task_id}/release",
    summary="Give a claimed call back to the list",
    responses=problem_responses_doc(403, 404, 409),
)
async def release(ctx: Ctx, staff: CallStaff, task_id: str) -> dict[str, Any]:
    return task_view(await ctx.tasks.release(staff, task_id))


class AttemptBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Outcome
    notes: str | None = Field(None, max_length=2000)
    call_back_at: AwareDatetime | None = None
    answers: dict[str, Any] | None = Field(
        None, description="the questionnaire's answers taken on the phone, by linkId"
    )


@router.post(
    "/tasks/{task_id}/attempts",
    summary="Record a call attempt with its coded outcome (the claim's holder only)",
    responses=problem_responses_doc(403, 404, 409, 422),
)
async def attempt(
    ctx: Ctx, staff: CallStaff, task_id: str, body: AttemptBody, reason: AccessReason = None
) -> dict[str, Any]:
    attempt_in = AttemptIn(
        outcome=body.outcome, notes=body.notes, call_back_at=body.call_back_at, answers=body.answers
    )
    return task_view(await ctx.tasks.record_attempt(staff, task_id, attempt_in, reason))
