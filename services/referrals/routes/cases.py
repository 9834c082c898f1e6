"""Referral cases over HTTP: submit, read, and one route per transition (thin: the rules are
in ``triage.py`` and ``care.py`` and ``domain/workflow.py``). Every reply carries the case's version
as its ``ETag``; every change needs it back in ``If-Match``."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from services.referrals.domain.case import ReferralIn, Summary
from services.referrals.routes.deps import PREFIX, Caller, Ctx, IfMatch
from services.referrals.worklists import case_view, patient_view
from shared.access_reason import AccessReason
from shared.auth import require_roles
from shared.mongo import Document
from shared.principal import Principal, Role

router = APIRouter(prefix=f"{PREFIX}/cases", tags=["referrals: cases"])
# doctors and coordinators write referrals for their organization; the HIS for any
Submitter = Annotated[
    Principal, Depends(require_roles(Role.DOCTOR, Role.COORDINATOR, Role.SERVICE))
]
CaseId = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,64}$")]


class AcceptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    department_id: str | None = Field(None, max_length=64)
    preferred_date: date | None = None
    book: bool | None = Field(None, description="book a visit (default: not for downward)")


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason_code: str | None = Field(None, max_length=40)
    reason: str | None = Field(None, max_length=1000)


class BookingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    preferred_date: date | None = None
    department_id: str | None = Field(None, max_length=64)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=4000)


class CompleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    summary: Summary | None = None


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=1000)


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org_id: str = Field(min_length=1, max_length=64)
    reason: str | None = Field(None, max_length=1000)


def reply(doc: Document, principal: Principal, response: Response) -> dict[str, Any]:
    response.headers["ETag"] = f'"{doc["version"]}"'
    if principal.is_staff or Role.SERVICE in principal.roles:
        return case_view(doc, principal)
    return patient_view(doc)


@router.post("", status_code=201, summary="Write a referral (routed at once unless a draft)")
async def submit(
    ctx: Ctx, principal: Caller, body: ReferralIn, response: Response
) -> dict[str, Any]:
    doc = await ctx.cases.submit(principal, body)
    response.headers["Location"] = f"{PREFIX}/cases/{doc['_id']}"
    return reply(doc, principal, response)


@router.get("/{referral_id}", summary="One referral: its status, routing, booking and history")
async def get_case(
    ctx: Ctx,
    principal: Caller,
    referral_id: CaseId,
    response: Response,
    reason: AccessReason = None,
) -> dict[str, Any]:
    doc = await ctx.cases.get_for(principal, referral_id, reason=reason)
    return reply(doc, principal, response)


@router.post("/{referral_id}/submit", summary="Send a draft referral (the sender)")
async def submit_draft(
    ctx: Ctx, principal: Caller, referral_id: CaseId, response: Response, if_match: IfMatch = None
) -> dict[str, Any]:
    doc = await ctx.triage.submit(principal, referral_id, if_match)
    return reply(doc, principal, response)


@router.post("/{referral_id}/accept", summary="Accept into a department (the receiver)")
async def accept(
    ctx: Ctx,
    principal: Caller,
    referral_id: CaseId,
    body: AcceptIn,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    doc = await ctx.triage.accept(
        principal,
        referral_id,
        if_match,
        department_id=body.department_id,
        preferred_date=body.preferred_date,
        book=body.book,
    )
    return reply(doc, principal, response)


@router.post("/{referral_id}/reject", summary="Decline with a reason code (the receiver)")
async def reject(
    ctx: Ctx,
    principal: Caller,
    referral_id: CaseId,
    body: RejectIn,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    doc = await ctx.triage.reject(
        principal, referral_id, if_match, reason_code=body.reason_code, reason=body.reason
    )
    return reply(doc, principal, response)


@router.post("/{referral_id}/booking-requests", summary="Book again: another date or department")
async def request_booking(
    ctx: Ctx,
    principal: Caller,
    referral_id: CaseId,
    body: BookingIn,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    doc = await ctx.care.request_booking(
        principal,
        referral_id,
        if_match,
        preferred_date=body.preferred_date,
        department_id=body.department_id,
    )
    return reply(doc, principal, response)


@router.post("/{referral_id}/notes", summary="An interim note back to the referring doctor")
async def add_note(
    ctx: Ctx,
    principal: Caller,
    referral_id: CaseId,
    body: NoteIn,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    doc = await ctx.care.add_note(principal, referral_id, if_match, text=body.text)
    return reply(doc, principal, response)


@router.post("/{referral_id}/complete", summary="Close the loop with the summary (the receiver)")
async def complete(
    ctx: Ctx,
    principal: Caller,
    referral_id: CaseId,
    response: Response,
    body: Annotated[CompleteIn, Body()],
    if_match: IfMatch = None,
) -> dict[str, Any]:
    doc = await ctx.care.complete(principal, referral_id, if_match, summary=body.summary)
    return reply(doc, principal, response)


@router.post("/{referral_id}/cancel", summary="Withdraw the referral (the sender)")
async def cancel(
    ctx: Ctx,
    principal: Caller,
    referral_id: CaseId,
    body: ReasonIn,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    doc = await ctx.care.cancel(principal, referral_id, if_match, reason=body.reason)
    return reply(doc, principal, response)


@router.post("/{referral_id}/entered-in-error", summary="Mark as entered in error (the sender)")
async def entered_in_error(
    ctx: Ctx,
    principal: Caller,
    referral_id: CaseId,
    body: ReasonIn,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    doc = await ctx.care.cancel(
        principal, referral_id, if_match, reason=body.reason, command="mark_entered_in_error"
    )
    return reply(doc, principal, response)


@router.post("/{referral_id}/hold", summary="Put on hold (the receiving coordinator)")
async def hold(
    ctx: Ctx,
    principal: Caller,
    referral_id: CaseId,
    body: ReasonIn,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    doc = await ctx.triage.hold(principal, referral_id, if_match, reason=body.reason)
    return reply(doc, principal, response)


@router.post("/{referral_id}/resume", summary="Take off hold (the receiving coordinator)")
async def resume(
    ctx: Ctx, principal: Caller, referral_id: CaseId, response: Response, if_match: IfMatch = None
) -> dict[str, Any]:
    doc = await ctx.triage.resume(principal, referral_id, if_match)
    return reply(doc, principal, response)


@router.post("/{referral_id}/route-override", summary="Route by hand, with a reason (audited)")
async def override_route(
    ctx: Ctx,
    principal: Caller,
    referral_id: CaseId,
    body: OverrideIn,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    doc = await ctx.triage.override_route(
        principal, referral_id, if_match, org_id=body.org_id, reason=body.reason
    )
    return reply(doc, principal, response)
