"""Routes for reschedule, check-in with a queue number, and staff extra numbers (加号).

Each takes an optional ``Idempotency-Key``: a retry with the same key and body returns
the first result (with ``Idempotent-Replayed: true``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from services.appointments.changes import ExtraNumberRequest, RescheduleRequest
from services.appointments.extra_numbers import EXTRA_NUMBER_ROLES
from services.appointments.routes.deps import (
    PREFIX,
    Booker,
    Caller,
    Ctx,
    IdempotencyKey,
    idempotent,
)
from services.appointments.routes.models import AppointmentView
from shared.access_reason import AccessReason
from shared.audit import require_reason
from shared.auth import require_roles
from shared.principal import Principal
from shared.problems import problem_responses_doc

router = APIRouter(prefix=PREFIX, tags=["appointments: changes"])

ExtraNumberStaff = Annotated[Principal, Depends(require_roles(*EXTRA_NUMBER_ROLES))]


@router.post(
    "/appointments/{appointment_id}/reschedule",
    summary="Move a booking to another slot (改约)",
    description=(
        "The new slot is secured before the old one is released. Same cut-off as "
        "cancelling (staff may override) and same rules as booking the new slot. Staff "
        "give a `reason` (query or `X-Access-Reason`; audited)."
    ),
    responses=problem_responses_doc(400, 403, 404, 409),
    response_model=AppointmentView,
)
async def reschedule(
    ctx: Ctx,
    caller: Booker,
    appointment_id: str,
    body: RescheduleRequest,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    reason: AccessReason = None,
) -> dict[str, Any]:
    require_reason(caller, reason, "rescheduling on a patient's behalf")
    body = body.model_copy(update={"reason": reason})
    return await idempotent(
        ctx,
        caller,
        f"reschedule:{appointment_id}",
        body.model_dump(mode="json"),
        idempotency_key,
        response,
        lambda idem: ctx.changes.reschedule(caller, appointment_id, body, idempotency=idem),
    )


@router.post(
    "/appointments/{appointment_id}/check-in",
    summary="Check in and get a queue number (签到)",
    description="By the patient or a nurse / hotline agent, inside the check-in window.",
    responses=problem_responses_doc(403, 404, 409),
    response_model=AppointmentView,
)
async def check_in(
    ctx: Ctx,
    caller: Caller,
    appointment_id: str,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    return await idempotent(
        ctx,
        caller,
        f"check-in:{appointment_id}",
        {},
        idempotency_key,
        response,
        lambda idem: ctx.changes.check_in(caller, appointment_id, idempotency=idem),
    )


@router.post(
    "/schedules/{schedule_id}/extra-numbers",
    status_code=201,
    summary="Add an extra number beyond capacity for a patient (加号, staff only)",
    responses=problem_responses_doc(403, 404, 409),
    response_model=AppointmentView,
)
async def add_extra_number(
    ctx: Ctx,
    caller: ExtraNumberStaff,
    schedule_id: str,
    body: ExtraNumberRequest,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    return await idempotent(
        ctx,
        caller,
        f"extra-number:{schedule_id}",
        body.model_dump(mode="json"),
        idempotency_key,
        response,
        lambda idem: ctx.changes.add_extra_number(caller, schedule_id, body, idempotency=idem),
    )
