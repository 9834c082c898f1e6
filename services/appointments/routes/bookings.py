"""Book, list, read and cancel appointments (patients for themselves, staff on behalf)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from services.appointments.booking import BookRequest
from services.appointments.routes.deps import (
    PREFIX,
    Booker,
    Caller,
    Ctx,
    IdempotencyKey,
    PatientAccount,
    idempotent,
)
from services.appointments.routes.models import AppointmentPage, AppointmentView
from shared.access_reason import AccessReason
from shared.audit import require_reason

router = APIRouter(prefix=PREFIX, tags=["appointments: bookings"])


@router.post(
    "/appointments",
    status_code=201,
    summary="Book a slot",
    description=(
        "Send an `Idempotency-Key`: a retry returns the first result. Staff booking on a "
        "patient's behalf give a `reason` (query or `X-Access-Reason`; audited)."
    ),
    response_model=AppointmentView,
)
async def book(
    ctx: Ctx,
    caller: Booker,
    body: BookRequest,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    reason: AccessReason = None,
) -> dict[str, Any]:
    require_reason(caller, reason, "booking on a patient's behalf")
    body = body.model_copy(update={"reason": reason})
    return await idempotent(
        ctx,
        caller,
        "book",
        body.model_dump(mode="json"),
        idempotency_key,
        response,
        lambda idem: ctx.booking.book(caller, body, idempotency=idem),
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
