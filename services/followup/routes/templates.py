"""Plan templates, versioned (admins): a change is a new version; plans keep theirs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from services.followup.domain.plan_template import TemplateBody
from services.followup.routes.deps import PREFIX, Admins, ClinicalStaff, Ctx, IfMatch, OrgQuery
from services.followup.templates import view
from shared.problems import PreconditionRequired, Unprocessable, problem_responses_doc

router = APIRouter(prefix=f"{PREFIX}/plan-templates", tags=["followup: plan templates"])


def _etag(doc: dict[str, Any], response: Response) -> dict[str, Any]:
    response.headers["ETag"] = f'"{doc["version"]}"'
    return view(doc)


@router.post(
    "",
    status_code=201,
    summary="Write a new plan template (version 1)",
    responses=problem_responses_doc(403, 422),
)
async def create(ctx: Ctx, admin: Admins, body: TemplateBody, response: Response) -> dict[str, Any]:
    return _etag(await ctx.templates.create(admin, body), response)


@router.get("", summary="The templates in use at an organization (latest versions)")
async def list_templates(ctx: Ctx, staff: ClinicalStaff, org_id: OrgQuery = None) -> dict[str, Any]:
    return {"items": [view(d) for d in await ctx.templates.list_for(staff, org_id)]}


@router.get(
    "/{template_id}",
    summary="A template (latest version, or ?version=N)",
    responses=problem_responses_doc(403, 404),
)
async def get_template(
    ctx: Ctx,
    staff: ClinicalStaff,
    template_id: str,
    response: Response,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    return _etag(await ctx.templates.get_for(staff, template_id, version), response)


@router.put(
    "/{template_id}",
    summary="Revise a template: a new version (If-Match: the current version's ETag)",
    responses=problem_responses_doc(403, 404, 409, 422, 428),
)
async def revise(
    ctx: Ctx,
    admin: Admins,
    template_id: str,
    body: TemplateBody,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    if if_match is None:
        raise PreconditionRequired("if_match_required", "send If-Match with the template's ETag")
    try:
        version = int(if_match.strip().removeprefix("W/").strip('"'))
    except ValueError as exc:
        raise Unprocessable("if_match_invalid", 'If-Match is the ETag, e.g. "3"') from exc
    return _etag(await ctx.templates.revise(admin, template_id, body, version), response)


@router.post(
    "/{template_id}/retire",
    summary="Retire a template: new plans no longer use it",
    responses=problem_responses_doc(403, 404),
)
async def retire(ctx: Ctx, admin: Admins, template_id: str) -> dict[str, Any]:
    return view(await ctx.templates.retire(admin, template_id))
