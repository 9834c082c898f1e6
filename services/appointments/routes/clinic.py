"""Routes for a cancelled session (停诊) and priority rebooking."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from services.appointments.routes.admin import check_org
from services.appointments.routes.deps import (
    PREFIX,
    Booker,
    Ctx,
    IdempotencyKey,
    PatientAccount,
    idempotent,
)
from services.appointments.routes.models import (
    AppointmentView,
    CancelledSession,
    RebookingOffers,
)
from shared.auth import require_roles
from shared.principal import Principal, Role
from shared.problems import problem_responses_doc

router = APIRouter(prefix=PREFIX, tags=["appointments: clinic"])

# the HIS (service), an organization's admin, or a coordinator announces a cancelled session
SessionStaff = Annotated[
    Principal, Depends(require_roles(Role.ADMIN, Role.SERVICE, Role.COORDINATOR))
]


class CancelSessionIn(BaseModel):
    reason: str = Field(min_length=2, max_length=200)


class AcceptOfferIn(BaseModel):
    schedule_id: str = Field(min_length=1, max_length=200)


@router.post(
    "/admin/schedules/{schedule_id}/cancel",
    summary="Cancel a doctor's session (停诊): its bookings are cancelled and offered rebooking",
    responses=problem_responses_doc(403, 404, 409),
    response_model=CancelledSession,
)
async def cancel_session(
    ctx: Ctx,
    principal: SessionStaff,
    schedule_id: str,
    body: CancelSessionIn,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    schedule = await ctx.schedules.get(schedule_id)
    check_org(principal, {schedule["org_id"]})
    return await idempotent(
        ctx,
        principal,
        f"cancel-session:{schedule_id}",
        body.model_dump(mode="json"),
        idempotency_key,
        response,
        lambda idem: ctx.clinic.cancel_session(
            principal, schedule, reason=body.reason, idempotency=idem
        ),
    )


@router.get(
    "/rebooking-offers",
    summary="Priority rebooking offers of my account's patients",
    response_model=RebookingOffers,
)
async def my_offers(ctx: Ctx, caller: PatientAccount) -> dict[str, Any]:
    now = datetime.now(UTC)
    patient_ids = [p["_id"] for p in await ctx.patients.for_account(caller.subject)]
    return {"items": await ctx.clinic.offers_of(patient_ids, now)}


@router.post(
    "/rebooking-offers/{offer_id}/accept",
    status_code=201,
    summary="Take an alternative session of a rebooking offer (before release, any pool)",
    responses=problem_responses_doc(403, 404, 409),
    response_model=AppointmentView,
)
async def accept_offer(
    ctx: Ctx,
    caller: Booker,
    offer_id: str,
    body: AcceptOfferIn,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    return await idempotent(
        ctx,
        caller,
        f"rebook:{offer_id}",
        body.model_dump(mode="json"),
        idempotency_key,
        response,
        lambda idem: ctx.clinic.accept(caller, offer_id, body.schedule_id, idempotency=idem),
    )
