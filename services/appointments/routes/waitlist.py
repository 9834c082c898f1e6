"""Routes: Waitlist (候补): join a full session; a freed slot is offered to the first in line."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from services.appointments.booking_common import Idempotency
from services.appointments.routes.deps import (
    PREFIX,
    Booker,
    Caller,
    Ctx,
    IdempotencyKey,
    PatientOrStaff,
    idempotent,
)
from services.appointments.routes.models import (
    AppointmentView,
    WaitlistEntries,
    WaitlistEntryView,
)
from services.appointments.waitlist_entries import JoinRequest, entry_view
from shared.access_reason import AccessReason
from shared.audit import require_reason
from shared.problems import problem_responses_doc
from shared.scoping import org_filter

router = APIRouter(prefix=PREFIX, tags=["appointments: waitlist"])


@router.post(
    "/waitlist",
    status_code=201,
    summary="Join the waitlist (候补) of a full session",
    description=(
        "Only when the caller's channel can book no slot in the session (else 409 "
        "`slots_available`) and before the queue closes the evening before (409 "
        "`waitlist_closed`). Staff may add a patient on their behalf (audited, give a "
        "`reason`). Send an `Idempotency-Key`: a retry returns the first result."
    ),
    responses=problem_responses_doc(403, 404, 409),
    response_model=WaitlistEntryView,
)
async def join(
    ctx: Ctx,
    caller: Booker,
    body: JoinRequest,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    reason: AccessReason = None,
) -> dict[str, Any]:
    require_reason(caller, reason, "joining a waitlist on a patient's behalf")
    body = body.model_copy(update={"reason": reason})

    async def run(idempotency: Idempotency | None) -> dict[str, Any]:
        return await ctx.waitlist.join(caller, body, idempotency=idempotency)

    fingerprint = body.model_dump(mode="json")
    return await idempotent(
        ctx, caller, "waitlist.join", fingerprint, idempotency_key, response, run
    )


@router.get(
    "/waitlist",
    summary="My account's waitlist entries, newest first",
    response_model=WaitlistEntries,
)
async def my_entries(
    ctx: Ctx,
    caller: PatientOrStaff,
    patient_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(pattern=r"^[a-z]{4,10}$")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    reason: AccessReason = None,
) -> dict[str, Any]:
    """Each entry with its place in line (``position``, waiting only) and its status:
    waiting, offered (with ``offer_expires_at`` and the held ``slot``), booked, expired,
    left or closed. Staff pass ``patient_id`` and a ``reason`` (the read is audited)."""
    if patient_id is not None:
        require_reason(caller, reason, "a patient's waitlist")
        ids = [(await ctx.patients.get_for(caller, patient_id))["_id"]]
        await ctx.audit.record(
            caller,
            "waitlist.list",
            patient_id=patient_id,
            resource=f"patient:{patient_id}",
            reason=reason,
        )
    else:
        ids = [p["_id"] for p in await ctx.patients.for_account(caller.subject)]
    org_id = org_filter(caller) if caller.is_staff else None
    items = await ctx.waitlist.entries_of(ids, status=status, limit=limit, org_id=org_id)
    return {"items": items}


@router.get(
    "/waitlist/{entry_id}",
    summary="One waitlist entry",
    responses=problem_responses_doc(400, 404),
    response_model=WaitlistEntryView,
)
async def get_entry(
    ctx: Ctx, caller: Caller, entry_id: str, reason: AccessReason = None
) -> dict[str, Any]:
    require_reason(caller, reason, "a waitlist entry")
    entry = await ctx.waitlist.owned(caller, entry_id)
    await ctx.audit.record(
        caller,
        "waitlist.read",
        patient_id=entry["patient_id"],
        resource=f"waitlist:{entry_id}",
        reason=reason,
    )
    policy = await ctx.policies.for_org(entry["org_id"])
    return entry_view(entry, await ctx.waitlist.position(entry), policy.timezone)


@router.delete(
    "/waitlist/{entry_id}",
    summary="Leave the waitlist",
    description="An outstanding offer passes to the next in line. Returns the entry (`left`).",
    responses=problem_responses_doc(404, 409),
    response_model=WaitlistEntryView,
)
async def leave(
    ctx: Ctx, caller: Booker, entry_id: str, reason: AccessReason = None
) -> dict[str, Any]:
    require_reason(caller, reason, "leaving a waitlist on a patient's behalf")
    return await ctx.waitlist.leave(caller, entry_id, reason=reason)


@router.post(
    "/waitlist/{entry_id}/confirm",
    status_code=201,
    summary="Take the offered slot: it is booked for the patient",
    description=(
        "Books the slot held for this entry exactly like a booking. After "
        "`offer_expires_at`: 409 `offer_expired`. Send an `Idempotency-Key`."
    ),
    responses=problem_responses_doc(403, 404, 409),
    response_model=AppointmentView,
)
async def confirm(
    ctx: Ctx,
    caller: Booker,
    entry_id: str,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    async def run(idempotency: Idempotency | None) -> dict[str, Any]:
        return await ctx.waitlist.confirm(caller, entry_id, idempotency=idempotency)

    fingerprint = {"entry_id": entry_id}
    return await idempotent(
        ctx, caller, "waitlist.confirm", fingerprint, idempotency_key, response, run
    )
