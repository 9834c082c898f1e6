"""Questionnaire definitions (admins write, staff read; versioned) and responses (the
patient answers through the link; staff of the organization read them, audited)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from pydantic import BaseModel, ConfigDict

from services.followup.fhir import questionnaire_resource
from services.followup.questionnaire_catalog import definition_view
from services.followup.questionnaires import response_view
from services.followup.routes.deps import (
    PREFIX,
    AllianceKeepers,
    Caller,
    ClinicalStaff,
    Ctx,
    IfMatch,
    PatientAccount,
)
from shared.access_reason import AccessReason
from shared.audit import require_reason
from shared.domain_errors import Conflict
from shared.problems import PreconditionRequired, Unprocessable, problem_responses_doc

router = APIRouter(prefix=PREFIX, tags=["followup: questionnaires"])

Definition = Annotated[
    dict[str, Any], Body(description="a FHIR R4 Questionnaire (with our risk_rules)")
]
Version = Annotated[int | None, Query(ge=1)]


def _etag(doc: dict[str, Any], response: Response) -> dict[str, Any]:
    response.headers["ETag"] = f'"{doc["version"]}"'
    return definition_view(doc)


@router.post(
    "/questionnaires",
    status_code=201,
    summary="Write a new questionnaire (version 1)",
    responses=problem_responses_doc(403, 409, 422),
)
async def create(
    ctx: Ctx, admin: AllianceKeepers, body: Definition, response: Response
) -> dict[str, Any]:
    return _etag(await ctx.questionnaires.catalog.create(admin, body), response)


@router.get("/questionnaires", summary="Every questionnaire (latest versions, without items)")
async def list_questionnaires(ctx: Ctx, staff: ClinicalStaff) -> dict[str, Any]:
    docs = await ctx.questionnaires.catalog.list_latest()
    return {
        "items": [{k: v for k, v in definition_view(d).items() if k != "definition"} for d in docs]
    }


@router.get(
    "/questionnaires/{key}",
    summary="A questionnaire (latest version, or ?version=N)",
    responses=problem_responses_doc(403, 404),
)
async def get_questionnaire(
    ctx: Ctx, staff: ClinicalStaff, key: str, response: Response, version: Version = None
) -> dict[str, Any]:
    return _etag(await ctx.questionnaires.catalog.get(key, version), response)


@router.get(
    "/questionnaires/{key}/fhir",
    summary="A questionnaire as a FHIR R4 Questionnaire (latest version, or ?version=N)",
    responses=problem_responses_doc(403, 404),
)
async def questionnaire_fhir(
    ctx: Ctx, staff: ClinicalStaff, key: str, version: Version = None
) -> dict[str, Any]:
    catalog = ctx.questionnaires.catalog
    return questionnaire_resource(catalog.parsed(await catalog.get(key, version)))


@router.put(
    "/questionnaires/{key}",
    summary="Revise a questionnaire: a new version (If-Match: the current version's ETag)",
    responses=problem_responses_doc(403, 404, 409, 422, 428),
)
async def revise(
    ctx: Ctx,
    admin: AllianceKeepers,
    key: str,
    body: Definition,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    if if_match is None:
        raise PreconditionRequired(
            "if_match_required", "send If-Match with the questionnaire's ETag"
        )
    try:
        version = int(if_match.strip().removeprefix("W/").strip('"'))
    except ValueError as exc:
        raise Unprocessable("if_match_invalid", 'If-Match is the ETag, e.g. "3"') from exc
    return _etag(await ctx.questionnaires.catalog.revise(admin, key, body, version), response)


@router.get("/me/questionnaires", summary="Questionnaires waiting for my patients' answers")
async def my_questionnaires(ctx: Ctx, caller: PatientAccount) -> dict[str, Any]:
    return {"items": await ctx.questionnaires.open_for_account(caller)}


@router.get(
    "/questionnaire-responses/{response_id}",
    summary="A sent questionnaire with its definition to render (the patient; staff, audited)",
    responses=problem_responses_doc(403, 404),
)
async def get_response(
    ctx: Ctx, caller: Caller, response_id: str, reason: AccessReason = None
) -> dict[str, Any]:
    require_reason(caller, reason, "a patient's questionnaire")
    response = await ctx.questionnaires.readable(caller, response_id, reason)
    definition = await ctx.questionnaires.definition_of(response)
    return {**response_view(response), "definition": definition}


class AnswersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answers: dict[str, Any]


@router.post(
    "/questionnaire-responses/{response_id}/answers",
    summary="The patient's answers, by linkId (once)",
    responses=problem_responses_doc(403, 404, 409, 422),
)
async def answer(ctx: Ctx, caller: Caller, response_id: str, body: AnswersIn) -> dict[str, Any]:
    completed = await ctx.questionnaires.answer_as_patient(caller, response_id, body.answers)
    return response_view(completed)


@router.get(
    "/questionnaire-responses/{response_id}/fhir",
    summary="An answered questionnaire as a FHIR R4 QuestionnaireResponse",
    responses=problem_responses_doc(403, 404, 409),
)
async def response_fhir(
    ctx: Ctx, caller: Caller, response_id: str, reason: AccessReason = None
) -> dict[str, Any]:
    require_reason(caller, reason, "a patient's questionnaire")
    response = await ctx.questionnaires.readable(caller, response_id, reason)
    if response["status"] != "completed":
        raise Conflict(
            "response_not_completed",
            "the questionnaire is not answered yet",
            detail_zh="问卷尚未填写",
        )
    fhir: dict[str, Any] = response["fhir"]
    return fhir
