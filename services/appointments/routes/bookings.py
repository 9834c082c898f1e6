"""Book, list, read and cancel appointments (patients for themselves, staff on behalf)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from services.appointments.booking import BookRequest
from services.appointments.booking_common import Idempotency
from services.appointments.routes.deps import (
    PREFIX,
    Booker,
    Caller,
    Ctx,
    IdempotencyKey,
    PatientAccount,
    idempotent,
)
from services.appointments.routes.models import (
    AppointmentPage,
    AppointmentView,
    QueuedBooking,
    TicketView,
)
from services.appointments.waiting_room import Ticket, ticket_body, ticket_urls
from shared.access_reason import AccessReason
from shared.audit import require_reason
from shared.idempotency import StoredResponse

router = APIRouter(prefix=PREFIX, tags=["appointments: bookings"])
TicketId = Annotated[str, Path(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@router.post(
    "/appointments",
    status_code=201,
    summary="Book a slot",
    description=(
        "Send an `Idempotency-Key`: a retry returns the first result, also after a crash "
        "(it completes the booking). Staff booking on a patient's behalf give a `reason` "
        "(query or `X-Access-Reason`; audited).\n\n"
        "In a release-time surge the answer may be `202` with a waiting-room ticket "
        "(排队): its position, an estimated wait, a URL to poll and an event stream. "
        "Tickets are served in arrival order; poll at least every 30 s or the ticket "
        "expires. A patient has one ticket per session: booking again returns it."
    ),
    response_model=AppointmentView | QueuedBooking,
    responses={202: {"model": QueuedBooking, "description": "Queued in the waiting room"}},
)
async def book(
    ctx: Ctx,
    caller: Booker,
    body: BookRequest,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    reason: AccessReason = None,
    lane: Annotated[str | None, Header(alias="X-CareLoop-Lane", include_in_schema=False)] = None,
) -> dict[str, Any]:
    require_reason(caller, reason, "booking on a patient's behalf")
    body = body.model_copy(update={"reason": reason})

    async def run(idem: Idempotency | None) -> dict[str, Any]:
        outcome = await ctx.booking.book(caller, body, idempotency=idem, lane=lane or "")
        if not isinstance(outcome, Ticket):
            return outcome
        queued = {"status": "queued", "ticket": {**asdict(outcome), **ticket_urls(outcome.id)}}
        if idem is not None:  # a retry gets the same ticket
            await idem.keys.complete(idem.scope, idem.key, StoredResponse(202, queued))
        response.status_code = 202
        return queued

    result = await idempotent(
        ctx, caller, "book", body.model_dump(mode="json"), idempotency_key, response, run
    )
    if response.status_code == 202:
        response.headers["Location"] = ticket_urls(result["ticket"]["id"])["poll_url"]
    return result


@router.get(
    "/tickets/{ticket_id}",
    summary="A waiting-room ticket: its place, then its answer",
    response_model=TicketView,
)
async def ticket(ctx: Ctx, caller: Booker, ticket_id: TicketId) -> dict[str, Any]:
    return ticket_body(await ctx.waiting_room.state(ticket_id, caller))


@router.get(
    "/tickets/{ticket_id}/events",
    summary="A waiting-room ticket as server-sent events",
    description=(
        "`text/event-stream`: an `event: ticket` (the ticket as JSON) whenever it changes, "
        "comment heartbeats in between; the stream ends with the ticket's answer."
    ),
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def ticket_events(ctx: Ctx, caller: Booker, ticket_id: TicketId) -> StreamingResponse:
    await ctx.waiting_room.state(ticket_id, caller)  # 404 as a problem, before streaming
    return StreamingResponse(
        ctx.waiting_room.stream(ticket_id, caller),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/appointments",
    summary="My account's appointments, newest first",
    response_model=AppointmentPage,
)
async def my_appointments(
    ctx: Ctx,
    caller: PatientAccount,
    status: Annotated[str | None, Query(pattern=r"^[a-z_]{3,20}$")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    items = await ctx.queries.for_account(caller.subject, status=status, limit=limit, before=before)
    return {"items": items, "next": items[-1]["id"] if len(items) == limit else None}


@router.get(
    "/appointments/{appointment_id}", summary="One appointment", response_model=AppointmentView
)
async def get_appointment(
    ctx: Ctx,
    caller: Caller,
    appointment_id: str,
    reason: AccessReason = None,
) -> dict[str, Any]:
    require_reason(caller, reason, "an appointment")
    doc = await ctx.queries.get_document(caller, appointment_id)
    if caller.is_staff:
        await ctx.audit.record(
            caller,
            "appointment.read",
            patient_id=doc["patient_id"],
            resource=f"appointment:{appointment_id}",
            reason=reason,
        )
    return (await ctx.queries.views([doc]))[0]


class CancelRequest(BaseModel):
    """Why the booking is cancelled (in the cancellation event). Staff cancelling for a
    patient also give their access `reason` (query or `X-Access-Reason`; audited)."""

    reason: str = Field(min_length=1, max_length=200, examples=["feeling better"])


@router.post(
    "/appointments/{appointment_id}/cancel",
    summary="Cancel a booking",
    response_model=AppointmentView,
)
async def cancel(
    ctx: Ctx,
    caller: Booker,
    appointment_id: str,
    body: CancelRequest,
    access_reason: AccessReason = None,
) -> dict[str, Any]:
    require_reason(caller, access_reason, "cancelling on a patient's behalf")
    return await ctx.cancellation.cancel(
        caller, appointment_id, reason=body.reason, access_reason=access_reason
    )
