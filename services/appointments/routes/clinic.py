"""Routes for a cancelled session (停诊) and priority rebooking."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from services.appointments.bootstrap import Appointments
from services.appointments.clinic import REBOOKING_OFFERS
from services.appointments.routes.admin import check_org
from services.appointments.routes.deps import (
    PREFIX,
    Booker,
    Ctx,
    IdempotencyKey,
    PatientAccount,
    idempotent,
)
from shared.auth import require_roles
from shared.mongo import Document
from shared.principal import Principal, Role
from shared.problems import problem_responses_doc

router = APIRouter(prefix=PREFIX, tags=["appointments: clinic"])

# the HIS (service), an organization's admin, or a coordinator announces a cancelled session
SessionStaff = Annotated[
    Principal, Depends(require_roles(Role.ADMIN, Role.SERVICE, Role.COORDINATOR))
]
OFFER_SHOWS = (
    *("patient_id", "reason", "department_id", "department_name", "cancelled"),
    *("cancelled_schedule_id", "cancelled_appointment_id", "created_at", "expires_at"),
)


class CancelSessionIn(BaseModel):
    reason: str = Field(min_length=2, max_length=200)


class AcceptOfferIn(BaseModel):
    schedule_id: str = Field(min_length=1, max_length=200)


@router.post(
    "/admin/schedules/{schedule_id}/cancel",
    summary="Cancel a doctor's session (停诊): its bookings are cancelled and offered rebooking",
    responses=problem_responses_doc(403, 404, 409),
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


@router.get("/rebooking-offers", summary="Priority rebooking offers of my account's patients")
async def my_offers(ctx: Ctx, caller: PatientAccount) -> dict[str, Any]:
    now = datetime.now(UTC)
    await ctx.clinic.ensure_indexes()
    patient_ids = [p["_id"] for p in await ctx.patients.for_account(caller.subject)]
    docs = (
        await ctx.db[REBOOKING_OFFERS]
        .find({"patient_id": {"$in": patient_ids}})
        .sort("created_at", -1)
        .to_list(100)
    )
    return {"items": [await offer_view(ctx, doc, now) for doc in docs]}


async def offer_view(ctx: Appointments, doc: Document, now: datetime) -> dict[str, Any]:
    """An offer with the alternatives that can be taken right now (an open offer only)."""
    status = doc["status"]
    if status == "open" and now >= doc["expires_at"]:
        status = "expired"
    alternatives: list[dict[str, Any]] = []
    if status == "open":
        alternatives = await ctx.clinic.alternatives(
            doc["org_id"],
            doc["department_id"],
            doc["cancelled_schedule_id"],
            now,
            offered_at=doc["created_at"],
        )
    return {
        "id": doc["_id"],
        "status": status,
        **{k: doc[k] for k in OFFER_SHOWS},
        "alternatives": alternatives,
        "appointment_id": doc.get("appointment_id"),
    }


@router.post(
    "/rebooking-offers/{offer_id}/accept",
    status_code=201,
    summary="Take an alternative session of a rebooking offer (before release, any pool)",
    responses=problem_responses_doc(403, 404, 409),
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
