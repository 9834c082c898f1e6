"""HL7 v2 over HTTP from the HIS, the review of what came in, and the staff match of
discharges whose patient is not known yet."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from services.followup.routes.deps import PREFIX, Admins, CallStaff, Ctx, His, Limit, OrgQuery
from shared.access_reason import AccessReason
from shared.audit import require_reason
from shared.problems import Problem, Unprocessable, problem_responses_doc

router = APIRouter(prefix=PREFIX, tags=["followup: intake"])
HL7_MEDIA_TYPE = "x-application/hl7-v2+er7"


@router.post(
    "/his/adt",
    summary="Take one HL7 v2 ADT message (the HIS); answers its ACK",
    description="The body is one HL7 v2 message (ER7 text). `ADT^A03` becomes a discharge "
    "and a follow-up plan; other triggers are acknowledged and not planned; a message seen "
    "before (sender and MSH-10) gets its first answer again. The answer is the HL7 ACK "
    f"(`{HL7_MEDIA_TYPE}`, MSA-1 AA); a rejected message is a 422 problem "
    "(`hl7_rejected`) carrying the AR ACK in `ack`, and is kept for review.",
    responses=problem_responses_doc(401, 403, 413, 422),
    response_class=Response,
)
async def adt(ctx: Ctx, _his: His, request: Request) -> Response:
    body = await request.body()
    if len(body) > ctx.settings.mllp_max_frame_bytes:
        raise Problem(413, "message_too_large", "one HL7 message is at most 1 MiB")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("latin-1")
    answer, outcome = await ctx.intake.hl7(text, "http")
    if outcome == "malformed":
        raise Unprocessable(
            "hl7_rejected",
            "the HL7 message was rejected; the ACK says why",
            detail_zh="HL7 消息被拒收",
            extra={"ack": answer},
        )
    return Response(content=answer, media_type=HL7_MEDIA_TYPE)


@router.get("/intake/messages", summary="What came in from the HIS (admins; no raw text)")
async def messages(
    ctx: Ctx,
    admin: Admins,
    outcome: Annotated[str | None, Query(max_length=32)] = None,
    org_id: OrgQuery = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    return {"items": await ctx.intake.list_for(admin, outcome, org_id, limit)}


@router.get(
    "/intake/messages/{message_id}",
    summary="One message with its raw text (admins; audited, give a reason)",
    responses=problem_responses_doc(403, 404),
)
async def message(
    ctx: Ctx, admin: Admins, message_id: str, reason: AccessReason = None
) -> dict[str, Any]:
    require_reason(admin, reason, "an HIS message's text")
    return await ctx.intake.read_for(admin, message_id, reason)


@router.get("/discharges/unmatched", summary="Discharges waiting for staff to name the patient")
async def unmatched(
    ctx: Ctx,
    staff: CallStaff,
    org_id: OrgQuery = None,
    limit: Limit = 100,
    reason: AccessReason = None,
) -> dict[str, Any]:
    return {"items": await ctx.discharges.awaiting_match(staff, org_id, limit, reason)}


class MatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patient_id: str = Field(min_length=1, max_length=64)


@router.post(
    "/discharges/{discharge_id}/match",
    summary="Name the real-name patient of a discharge (audited); it is then planned",
    responses=problem_responses_doc(403, 404, 409, 422),
)
async def match(
    ctx: Ctx, staff: CallStaff, discharge_id: str, body: MatchIn, reason: AccessReason = None
) -> dict[str, Any]:
    require_reason(staff, reason, "matching a discharge to a patient")
    return await ctx.discharges.match(staff, discharge_id, body.patient_id, reason)
