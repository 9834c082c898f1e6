"""Satisfaction surveys: the patient reads and answers one; staff read the results."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.followup.routes.deps import (
    PREFIX,
    Caller,
    ClinicalStaff,
    Ctx,
    OrgQuery,
    PatientAccount,
)
from services.followup.routes.figures import period
from services.followup.survey_results import GroupBy
from shared.access_reason import AccessReason
from shared.problems import problem_responses_doc
from shared.scoping import asked_org

router = APIRouter(prefix=PREFIX, tags=["followup: surveys"])


@router.get(
    "/surveys/results",
    summary="Survey results by department, doctor or organization (staff of the org; audited)",
    responses=problem_responses_doc(403, 422),
)
async def results(
    ctx: Ctx,
    staff: ClinicalStaff,
    org_id: OrgQuery = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    group_by: GroupBy = "department",
    reason: AccessReason = None,
) -> dict[str, Any]:
    org = asked_org(staff, org_id)
    start, end = period(since, until)
    groups = await ctx.surveys.results(staff, org, start, end, group_by, reason)
    return {"org_id": org, "since": start, "until": end, "group_by": group_by, "groups": groups}


@router.get("/me/surveys", summary="Open surveys of the patients my account manages")
async def my_surveys(ctx: Ctx, caller: PatientAccount) -> dict[str, Any]:
    return {"items": await ctx.surveys.open_for_account(caller)}


@router.get(
    "/surveys/{survey_id}",
    summary="A survey with the questionnaire to render (the patient's account)",
    responses=problem_responses_doc(403, 404),
)
async def get_survey(ctx: Ctx, caller: Caller, survey_id: str) -> dict[str, Any]:
    return await ctx.surveys.get_for(caller, survey_id)


class AnswersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answers: dict[str, Any] = Field(description="the answers by linkId")


@router.post(
    "/surveys/{survey_id}/answers",
    summary="Answer a survey, once (409 survey_already_completed / survey_expired)",
    responses=problem_responses_doc(403, 404, 409, 422),
)
async def answer_survey(
    ctx: Ctx, caller: Caller, survey_id: str, body: AnswersIn
) -> dict[str, Any]:
    return await ctx.surveys.answer(caller, survey_id, body.answers)
