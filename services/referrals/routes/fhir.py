"""A referral case read as FHIR R4(B): its Task (the workflow) and its ServiceRequest (what
was asked for), for partners that speak FHIR. Read-only.

The caller sees the case exactly when they may read it through the referrals API (the
cases module checks the organization or patient and writes the audit entry); the body is
``application/fhir+json`` and the ETag the case's version, FHIR's ``W/"<versionId>"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from services.referrals.fhir import service_request_of, task_of
from services.referrals.routes.deps import PREFIX, Caller, Ctx
from shared.problems import problem_responses_doc

FHIR_MEDIA_TYPE = "application/fhir+json"
FHIR_ID = r"^[A-Za-z0-9.-]{1,64}$"  # a FHIR id: the referral ids (uuid7) are ones

router = APIRouter(prefix=f"{PREFIX}/fhir", tags=["referrals: FHIR"])
ReferralPath = Annotated[str, Path(pattern=FHIR_ID, description="the referral id")]


class FhirJSONResponse(JSONResponse):
    media_type = FHIR_MEDIA_TYPE


def _resource_doc(resource_type: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": f"the FHIR R4 (R4B models) {resource_type}",
            "content": {FHIR_MEDIA_TYPE: {"schema": {"type": "object"}}},
        },
        **problem_responses_doc(401, 403, 404, 422),
    }


def _fhir(resource: dict[str, Any], case: Mapping[str, Any]) -> FhirJSONResponse:
    headers = {"ETag": f'W/"{case["version"]}"'} if case.get("version") is not None else None
    return FhirJSONResponse(resource, headers=headers)


@router.get(
    "/Task/{referral_id}",
    summary="A referral as a FHIR Task (status, business status, owner, deadline, outputs)",
    response_class=FhirJSONResponse,
    responses=_resource_doc("Task"),
)
async def get_task(ctx: Ctx, principal: Caller, referral_id: ReferralPath) -> FhirJSONResponse:
    case = await ctx.cases.get_for(principal, referral_id)
    return _fhir(task_of(case), case)


@router.get(
    "/ServiceRequest/{referral_id}",
    summary="A referral as a FHIR ServiceRequest (patient, reason, specialty, documents)",
    response_class=FhirJSONResponse,
    responses=_resource_doc("ServiceRequest"),
)
async def get_service_request(
    ctx: Ctx, principal: Caller, referral_id: ReferralPath
) -> FhirJSONResponse:
    case = await ctx.cases.get_for(principal, referral_id)
    return _fhir(service_request_of(case), case)
