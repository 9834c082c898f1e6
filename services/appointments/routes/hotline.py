"""The hotline (96165) finding its caller: staff search and read patients of their
organization (audited, with a reason), the telephony tells of incoming calls that pop on
the agent's screen (server-sent events), and a caller with no record is registered."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import StreamingResponse

from services.appointments.hotline_calls import CallIn, CallPop, CallReceived
from services.appointments.routes.deps import PREFIX, Ctx, Staff
from services.appointments.staff_registration import StaffRegistrationIn
from services.appointments.staff_search import (
    PatientMatches,
    PatientSearchIn,
    StaffPatient,
    checked_phone,
    search_term,
    to_match,
    to_staff_patient,
)
from shared.access_reason import AccessReason
from shared.audit import require_reason
from shared.auth import require_roles
from shared.principal import Principal, Role
from shared.problems import Unprocessable, problem_responses_doc
from shared.scoping import ensure_org, other_org

router = APIRouter(prefix=PREFIX, tags=["appointments: hotline"])

# the telephony integration (a service account) tells of calls; admins may too (tests, drills)
Telephony = Annotated[Principal, Depends(require_roles(Role.SERVICE, Role.ADMIN))]
# whose screen pops: the hotline's agents, and admins of the organization
Agents = Annotated[Principal, Depends(require_roles(Role.AGENT, Role.ADMIN))]
# who registers a new patient: the hotline, the registration desk, admins
Registrars = Annotated[Principal, Depends(require_roles(Role.AGENT, Role.NURSE, Role.ADMIN))]


def org_required() -> Unprocessable:
    return Unprocessable(
        "org_id_required", "name the organization (org_id)", detail_zh="请指定机构"
    )


def caller_org(caller: Principal, org_id: str | None) -> str:
    """``org_id`` if the caller may act there (403 if not), else the caller's own."""
    if org_id is None:
        if Role.SERVICE in caller.roles or caller.org_id is None:
            raise org_required()
        return caller.org_id
    ensure_org(caller, org_id)
    return org_id


@router.post(
    "/staff/patients/search",
    summary="Find patients of my organization by phone, national ID or name (staff, audited)",
    description="Exactly one of `phone`, `national_id`, `name` (exact) in the body; at most "
    "20 matches, masked. Give a `reason` (query or `X-Access-Reason`); the audit record "
    "(`patient.search`) names the kind of term and the count, never the term.",
    responses=problem_responses_doc(400, 422),
)
async def search_patients(
    ctx: Ctx, staff: Staff, body: PatientSearchIn, reason: AccessReason = None
) -> PatientMatches:
    require_reason(staff, reason, "a patient search")
    kind, term = search_term(body)
    found = await ctx.staff_search.search(staff, kind, term)
    await ctx.audit.record(
        staff,
        "patient.search",
        patient_id=found[0]["_id"] if len(found) == 1 else None,
        resource="patient",
        reason=reason,
        details={"kind": kind, "count": len(found)},
    )
    return PatientMatches(items=[to_match(d) for d in found])


@router.get(
    "/staff/patients/{patient_id}",
    summary="A patient of my organization (staff, audited)",
    description="Full name, masked national ID and phone. Give a `reason`; audited "
    "(`patient.read`). 403 for a patient not treated at the caller's organization.",
    responses=problem_responses_doc(400, 403, 404),
)
async def read_patient(
    ctx: Ctx, staff: Staff, patient_id: str, reason: AccessReason = None
) -> StaffPatient:
    require_reason(staff, reason, "a patient's record")
    doc = await ctx.patients.get_for(staff, patient_id)  # 403 for another organization's
    await ctx.audit.record(
        staff,
        "patient.read",
        patient_id=patient_id,
        resource=f"patient:{patient_id}",
        reason=reason,
    )
    return to_staff_patient(doc)


@router.post(
    "/staff/patients",
    status_code=201,
    summary="Register a caller or visitor who has no record (agent, nurse, admin; audited)",
    description="Exactly one of `phone` and `call_id` (the number is then taken from the "
    "stored call). The record is made at the staff member's organization, with no account; "
    "a national ID already on record under the same name answers 200 with that record "
    "(now treated at the organization), under another name 409 `identity_mismatch`. Give "
    "a `reason`; audited (`patient.registered_by_staff`).",
    responses={
        200: {"model": StaffPatient, "description": "the record already held for the ID"},
        **problem_responses_doc(400, 403, 404, 409, 422),
    },
)
async def register_patient(
    ctx: Ctx,
    staff: Registrars,
    body: StaffRegistrationIn,
    response: Response,
    reason: AccessReason = None,
) -> StaffPatient:
    require_reason(staff, reason, "registering a patient")
    if staff.org_id is None:
        raise other_org()
    if (body.phone is None) == (body.call_id is None):
        raise Unprocessable(
            "phone_or_call_required",
            "give exactly one of phone and call_id",
            detail_zh="请填写手机号或选择来电（二选一）",
        )
    if body.call_id is not None:
        call = await ctx.calls.get(body.call_id)
        if call["org_id"] != staff.org_id:
            raise other_org()
        phone = checked_phone(ctx.calls.caller_number(call))
    else:
        phone = checked_phone(str(body.phone))
    doc, created = await ctx.staff_registration.register(
        body.name, body.national_id, phone, staff.org_id
    )
    await ctx.audit.record(
        staff,
        "patient.registered_by_staff",
        patient_id=doc["_id"],
        resource=f"patient:{doc['_id']}",
        reason=reason,
        details={"created": created, "call_id": body.call_id},
    )
    response.status_code = 201 if created else 200
    return to_staff_patient(doc)


@router.post(
    "/staff/calls",
    status_code=201,
    summary="An incoming hotline call (the telephony integration, admins)",
    description="Matches the caller's number to patients of the organization and pops the "
    "call on the extension's screens (`GET /staff/calls/stream`). The same `call_id` again "
    "answers 200 with the same body and pops nothing. `org_id`: required for service "
    "callers; an admin's own organization otherwise.",
    responses={
        200: {"model": CallReceived, "description": "the same call again: nothing popped"},
        **problem_responses_doc(403, 409, 422),
    },
)
async def incoming_call(
    ctx: Ctx, caller: Telephony, body: CallIn, response: Response
) -> CallReceived:
    org_id = caller_org(caller, body.org_id)
    answer, created = await ctx.calls.receive(body, org_id)
    response.status_code = 201 if created else 200
    return answer


@router.get(
    "/staff/calls/stream",
    summary="Incoming calls of my extension as server-sent events (agents, admins)",
    description="`text/event-stream`: an `event: ready` at once, then an `event: call` per "
    "incoming call at the extension "
    "(its stream id as the event id; `data`: the pop, as `GET /staff/calls/{call_id}`), "
    "from now, or after `Last-Event-ID` when reconnecting; comment heartbeats every 15 s. "
    "Each delivered pop is audited (`call.popped`).",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **problem_responses_doc(403, 422)},
)
async def call_stream(
    ctx: Ctx,
    agent: Agents,
    extension: Annotated[str, Query(pattern=r"^\d{2,8}$")],
    org_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=64)] = None,
) -> StreamingResponse:
    org = caller_org(agent, org_id)
    return StreamingResponse(
        ctx.calls.stream(agent, org, extension, last_event_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/staff/calls/{call_id}",
    summary="One incoming call's pop (agents, admins of its organization; audited)",
    responses=problem_responses_doc(403, 404),
)
async def get_call(ctx: Ctx, agent: Agents, call_id: str) -> CallPop:
    call = await ctx.calls.get(call_id)
    ensure_org(agent, call["org_id"])
    pop = await ctx.calls.pop(call)
    await ctx.calls.audit_pop(agent, pop, "call.read")
    return pop
