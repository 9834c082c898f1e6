"""Routes: admission notices (住院证), the bed waiting list and bed offers.

Refusals when a bed is assigned: 409 `bed_not_free`, `notice_not_waiting`; 422
`gender_mismatch`, `isolation_mismatch`, `monitoring_mismatch` and
`borrowing_not_allowed` (the bed policy does not let the notice's department borrow from
the ward's: the request is wrong for this patient, not a matter of the caller's rights).
Nothing is written on a refusal. Commands take an `Idempotency-Key`: a retry returns the
first result.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from services.appointments.admission_notices import NoticeIn, NoticeStatus
from services.appointments.bed_offer_states import AssignIn
from services.appointments.bed_queries import LISTED
from services.appointments.booking_common import Idempotency
from services.appointments.catalog import CODE
from services.appointments.domain.models import ORG_ID
from services.appointments.routes.deps import (
    PREFIX,
    Caller,
    Ctx,
    IdempotencyKey,
    PatientAccount,
    idempotent,
)
from shared.access_reason import AccessReason
from shared.audit import require_reason
from shared.auth import require_roles
from shared.principal import Principal, Role
from shared.problems import Unprocessable, problem_responses_doc
from shared.scoping import ensure_org

router = APIRouter(prefix=PREFIX, tags=["appointments: beds"])
Doctor = Annotated[Principal, Depends(require_roles(Role.DOCTOR))]
BedManager = Annotated[Principal, Depends(require_roles(Role.NURSE, Role.ADMIN))]
# the patient's account in the mini-program, or staff on the phone (audited, with a
# reason): a hotline agent, or the bed desk (nurses, admins) the patient calls back
Answerer = Annotated[
    Principal, Depends(require_roles(Role.PATIENT, Role.AGENT, Role.NURSE, Role.ADMIN))
]
Id = Annotated[str, Path(min_length=1, max_length=64)]


@router.post(
    "/admission-notices",
    status_code=201,
    summary="Issue an admission notice (住院证): the patient joins the department's bed line",
    description="A doctor of the organization. A second active notice for the same "
    "patient and episode: 409 `admission_notice_exists`.",
    responses=problem_responses_doc(403, 404, 409, 422),
)
async def issue(
    ctx: Ctx,
    principal: Doctor,
    body: NoticeIn,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    async def run(idempotency: Idempotency | None) -> dict[str, Any]:
        return await ctx.admission_notices.issue(principal, body, idempotency)

    fingerprint = body.model_dump(mode="json")
    return await idempotent(
        ctx, principal, "admission_notice.issue", fingerprint, idempotency_key, response, run
    )


@router.get(
    "/admission-notices",
    summary="The bed desk's list: admission notices waiting for a bed or offered one",
    description=(
        "Bed managers (nurses, admins) of the organization; the read is audited (give a "
        "`reason`). `status` (repeatable): `waiting`, `offered`, `confirmed`; by default "
        "`waiting` and `offered`. Urgency first, then the longest wait; each notice with "
        "the patient's masked name, `waited_minutes` and its open offer (bed, "
        "`expires_at`)."
    ),
    responses=problem_responses_doc(400, 403, 422),
)
async def list_notices(
    ctx: Ctx,
    principal: BedManager,
    org_id: Annotated[str, Query(pattern=ORG_ID)],
    status: Annotated[list[NoticeStatus] | None, Query()] = None,
    department_code: Annotated[str | None, Query(pattern=CODE)] = None,
    reason: AccessReason = None,
) -> dict[str, Any]:
    ensure_org(principal, org_id)
    statuses = status or [NoticeStatus.WAITING, NoticeStatus.OFFERED]
    if any(s not in LISTED for s in statuses):
        raise Unprocessable(
            "status_not_listed",
            "status: waiting, offered or confirmed",
            detail_zh="仅可列出等床、已通知或已确认的住院证",
        )
    require_reason(principal, reason, "the bed waiting list")
    items = await ctx.bed_queries.notice_list(org_id, statuses, department_code)
    await ctx.audit.record(
        principal,
        "admission_notice.list",
        patient_id=None,
        resource=f"admission_notices:{org_id}",
        reason=reason,
        details={
            "statuses": [s.value for s in statuses],
            "department_code": department_code,
            "count": len(items),
            "patient_ids": sorted({i["patient_id"] for i in items})[:500],
        },
        org_id=org_id,
    )
    return {"items": items}


@router.get(
    "/me/admission-notices",
    summary="My account's admission notices: place in line, estimated wait, the open offer",
)
async def mine(ctx: Ctx, principal: PatientAccount) -> dict[str, Any]:
    return {"items": await ctx.admission_notices.of_account(principal.subject)}


@router.get(
    "/admission-notices/{notice_id}",
    summary="One admission notice (staff of its organization, audited; the patient's account)",
    responses=problem_responses_doc(400, 403, 404),
)
async def get_notice(
    ctx: Ctx, principal: Caller, notice_id: Id, reason: AccessReason = None
) -> dict[str, Any]:
    require_reason(principal, reason, "an admission notice")
    notice = await ctx.admission_notices.owned(principal, notice_id)
    await ctx.audit.record(
        principal,
        "admission_notice.read",
        patient_id=notice["patient_id"],
        resource=f"admission_notice:{notice_id}",
        reason=reason,
        org_id=notice["org_id"],
    )
    return await ctx.admission_notices.view(notice)


@router.post(
    "/admission-notices/{notice_id}/assign",
    status_code=201,
    summary="Assign a bed: it is reserved and offered to the patient",
    description=(
        "Bed managers (nurses, admins) of the organization. The patient is told when to "
        "come and what to bring and confirms by `confirm_by` (default: the bed policy's "
        "`offer_minutes`); unconfirmed, the bed goes to the next candidate."
    ),
    responses=problem_responses_doc(403, 404, 409, 422),
)
async def assign(ctx: Ctx, principal: BedManager, notice_id: Id, body: AssignIn) -> dict[str, Any]:
    return await ctx.bed_offers.assign(principal, notice_id, body)


@router.post(
    "/bed-offers/{bed_offer_id}/confirm",
    summary="The patient confirms the bed (their account, or the hotline or bed desk with a "
    "reason)",
    responses=problem_responses_doc(400, 403, 404, 409),
)
async def confirm(
    ctx: Ctx,
    principal: Answerer,
    bed_offer_id: Id,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    reason: AccessReason = None,
) -> dict[str, Any]:
    require_reason(principal, reason, "confirming a bed for a patient")

    async def run(idempotency: Idempotency | None) -> dict[str, Any]:
        return await ctx.bed_offers.confirm(principal, bed_offer_id, reason, idempotency)

    fingerprint = {"bed_offer_id": bed_offer_id}
    return await idempotent(
        ctx, principal, "bed_offer.confirm", fingerprint, idempotency_key, response, run
    )


@router.post(
    "/bed-offers/{bed_offer_id}/decline",
    summary="The patient declines the bed: it goes to the next candidate",
    responses=problem_responses_doc(400, 403, 404, 409),
)
async def decline(
    ctx: Ctx,
    principal: Answerer,
    bed_offer_id: Id,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    reason: AccessReason = None,
) -> dict[str, Any]:
    require_reason(principal, reason, "declining a bed for a patient")

    async def run(idempotency: Idempotency | None) -> dict[str, Any]:
        return await ctx.bed_offers.decline(principal, bed_offer_id, reason, idempotency)

    fingerprint = {"bed_offer_id": bed_offer_id}
    return await idempotent(
        ctx, principal, "bed_offer.decline", fingerprint, idempotency_key, response, run
    )
