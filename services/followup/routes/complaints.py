"""Complaints (首诉负责制): raising one, the owner's commands (If-Match: the complaint's
ETag), the organization's list, a patient account's own, and the organization's
complaint settings."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from services.followup.bootstrap import Followup
from services.followup.complaint_access import is_patient_account
from services.followup.complaint_records import patient_view, staff_view
from services.followup.complaint_settings import ComplaintSettingsIn, OrgComplaintSettings
from services.followup.complaints import ComplaintIn, Id
from services.followup.domain.complaint import (
    Category,
    Close,
    Command,
    Complexity,
    Handover,
    Reclassify,
    RecordCallback,
    Reopen,
    Resolve,
    Severity,
    StartInvestigation,
    Status,
    Withdraw,
)
from services.followup.routes.deps import PREFIX, Admins, Caller, ClinicalStaff, Ctx, IfMatch, Limit
from shared.access_reason import AccessReason
from shared.mongo import Document
from shared.principal import Principal
from shared.problems import Unprocessable, problem_responses_doc

router = APIRouter(prefix=PREFIX, tags=["followup: complaints"])
COMMAND_ERRORS = problem_responses_doc(403, 404, 409, 412, 422, 428)


def _view(caller: Principal, doc: Document, response: Response) -> dict[str, Any]:
    response.headers["ETag"] = f'"{doc["version"]}"'
    return patient_view(doc) if is_patient_account(caller) else staff_view(doc)


@router.post(
    "/complaints",
    status_code=201,
    summary="Raise a complaint (a patient account; or staff taking it on the hotline, "
    "at the counter, by letter: they own it)",
    responses=problem_responses_doc(403, 422),
)
async def raise_complaint(
    ctx: Ctx, caller: Caller, body: ComplaintIn, response: Response
) -> dict[str, Any]:
    return _view(caller, await ctx.complaints.raise_complaint(caller, body), response)


@router.get(
    "/complaints",
    summary="The organization's complaints, nearest deadline first (staff; audited)",
    responses=problem_responses_doc(403, 422),
)
async def list_complaints(
    ctx: Ctx,
    staff: ClinicalStaff,
    status: Status | None = None,
    owner: Annotated[Literal["me"] | None, Query(description="me: the ones I own")] = None,
    overdue: bool = False,
    org_id: Annotated[str | None, Query(max_length=64)] = None,
    patient_id: Annotated[
        str | None, Query(max_length=64, description="one patient's complaints")
    ] = None,
    limit: Limit = 100,
    reason: AccessReason = None,
) -> dict[str, Any]:
    items = await ctx.complaint_reads.list_for(
        staff,
        org_id=org_id,
        status=status,
        mine=owner == "me",
        overdue=overdue,
        patient_id=patient_id,
        limit=limit,
        reason=reason,
    )
    return {"items": items}


@router.get(
    "/complaints/{complaint_id}",
    summary="A complaint (staff of its organization, with its history; the complainant)",
    responses=problem_responses_doc(400, 403, 404),
)
async def get_complaint(
    ctx: Ctx, caller: Caller, complaint_id: str, response: Response, reason: AccessReason = None
) -> dict[str, Any]:
    view = await ctx.complaint_reads.get_for(caller, complaint_id, reason)
    response.headers["ETag"] = f'"{view["version"]}"'
    return view


@router.get("/me/complaints", summary="My complaints (a patient account)")
async def my_complaints(ctx: Ctx, caller: Caller, limit: Limit = 100) -> dict[str, Any]:
    return {"items": await ctx.complaint_reads.mine(caller, limit)}


# --- commands -------------------------------------------------------------------------


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HandoverIn(Body):
    to_owner_id: str = Field(max_length=64)
    reason: str = Field(max_length=500)


class ReclassifyIn(Body):
    complexity: Complexity
    departments_involved: list[Id] = Field(default_factory=list, max_length=20)
    category: Category | None = None
    severity: Severity | None = None


class ResolveIn(Body):
    resolution: str = Field(max_length=4000)


class CallbackIn(Body):
    reached: bool
    note: str | None = Field(None, max_length=1000)


class ReasonIn(Body):
    reason: str = Field(max_length=500)


class CloseIn(Body):
    satisfaction: int | None = Field(None, description="1-5, when the complainant was reached")
    callback_reached: bool | None = Field(None, description="the final callback, if not recorded")
    note: str | None = Field(None, max_length=1000)


async def _act(
    ctx: Followup,
    caller: Principal,
    complaint_id: str,
    if_match: str | None,
    command: Command,
    response: Response,
    relabel: dict[str, str] | None = None,
) -> dict[str, Any]:
    doc = await ctx.complaints.act(caller, complaint_id, if_match, command, relabel=relabel)
    return _view(caller, doc, response)


@router.post(
    "/complaints/{complaint_id}/start-investigation",
    summary="Start the investigation (the owner)",
    responses=COMMAND_ERRORS,
)
async def start_investigation(
    ctx: Ctx, caller: Caller, complaint_id: str, response: Response, if_match: IfMatch = None
) -> dict[str, Any]:
    return await _act(ctx, caller, complaint_id, if_match, StartInvestigation(), response)


@router.post(
    "/complaints/{complaint_id}/handover",
    summary="Hand the complaint over to a named person, with the reason",
    responses=COMMAND_ERRORS,
)
async def handover(
    ctx: Ctx,
    caller: Caller,
    complaint_id: str,
    body: HandoverIn,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    command = Handover(to_owner_id=body.to_owner_id, reason=body.reason)
    return await _act(ctx, caller, complaint_id, if_match, command, response)


@router.post(
    "/complaints/{complaint_id}/reclassify",
    summary="Reclassify: complexity and departments (the deadline follows), category, severity",
    responses=COMMAND_ERRORS,
)
async def reclassify(
    ctx: Ctx,
    caller: Caller,
    complaint_id: str,
    body: ReclassifyIn,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    command = Reclassify(body.complexity, tuple(body.departments_involved))
    relabel = {"category": body.category.value} if body.category else {}
    if body.severity:
        relabel["severity"] = body.severity.value
    return await _act(ctx, caller, complaint_id, if_match, command, response, relabel)


@router.post(
    "/complaints/{complaint_id}/resolve",
    summary="Record the resolution (followup.complaint.resolved)",
    responses=COMMAND_ERRORS,
)
async def resolve(
    ctx: Ctx,
    caller: Caller,
    complaint_id: str,
    body: ResolveIn,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    return await _act(ctx, caller, complaint_id, if_match, Resolve(body.resolution), response)


@router.post(
    "/complaints/{complaint_id}/callback",
    summary="Record a callback attempt to the complainant (回访)",
    responses=COMMAND_ERRORS,
)
async def callback(
    ctx: Ctx,
    caller: Caller,
    complaint_id: str,
    body: CallbackIn,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    command = RecordCallback(reached=body.reached, note=body.note)
    return await _act(ctx, caller, complaint_id, if_match, command, response)


@router.post(
    "/complaints/{complaint_id}/reopen",
    summary="Reopen a resolved complaint, with the reason",
    responses=COMMAND_ERRORS,
)
async def reopen(
    ctx: Ctx,
    caller: Caller,
    complaint_id: str,
    body: ReasonIn,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    return await _act(ctx, caller, complaint_id, if_match, Reopen(body.reason), response)


@router.post(
    "/complaints/{complaint_id}/close",
    summary="Close after the callback: the satisfaction of a reached complainant "
    "(followup.complaint.resolved, status closed)",
    responses=COMMAND_ERRORS,
)
async def close(
    ctx: Ctx,
    caller: Caller,
    complaint_id: str,
    body: CloseIn,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    command = Close(body.satisfaction, body.callback_reached, body.note)
    return await _act(ctx, caller, complaint_id, if_match, command, response)


@router.post(
    "/complaints/{complaint_id}/withdraw",
    summary="Withdraw an open complaint (the owner, an admin or the complainant)",
    responses=COMMAND_ERRORS,
)
async def withdraw(
    ctx: Ctx,
    caller: Caller,
    complaint_id: str,
    body: ReasonIn,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    return await _act(ctx, caller, complaint_id, if_match, Withdraw(body.reason), response)


# --- settings -------------------------------------------------------------------------


def _settings(found: OrgComplaintSettings, response: Response) -> dict[str, Any]:
    response.headers["ETag"] = f'"{found.version}"'
    return found.view()


@router.get(
    "/admin/complaint-settings/{org_id}",
    summary="An organization's complaint deadlines and desk (defaults when none stored)",
    responses=problem_responses_doc(403),
)
async def get_settings(
    ctx: Ctx, admin: Admins, org_id: str, response: Response, reason: AccessReason = None
) -> dict[str, Any]:
    return _settings(await ctx.complaint_settings.view_for(admin, org_id, reason), response)


@router.put(
    "/admin/complaint-settings/{org_id}",
    summary="Set an organization's complaint deadlines and desk (If-Match optional)",
    responses=problem_responses_doc(403, 412, 422),
)
async def put_settings(
    ctx: Ctx,
    admin: Admins,
    org_id: str,
    body: ComplaintSettingsIn,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    expected = None
    if if_match is not None:
        try:
            expected = int(if_match.strip().removeprefix("W/").strip('"'))
        except ValueError as exc:
            raise Unprocessable("if_match_invalid", 'If-Match is the ETag, e.g. "3"') from exc
    found = await ctx.outbox.transaction(
        lambda tx: ctx.complaint_settings.put(admin, org_id, body, expected, tx.session)
    )
    return _settings(found, response)
