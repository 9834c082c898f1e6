"""Routes: a patient's message log (their own, or staff with a reason: audited), and retries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from services.notifications.messages import MessageView, Status
from services.notifications.routes.deps import PREFIX, Caller, Ctx
from shared.access_reason import AccessReason
from shared.audit import require_reason
from shared.auth import require_roles
from shared.principal import Principal, Role
from shared.problems import Conflict, NotFound, problem_responses_doc
from shared.scoping import ensure_org, org_filter

router = APIRouter(prefix=PREFIX, tags=["notifications: messages"])
# a failed message is sent again by an organization's admin, or by a hotline agent for the
# patient on the phone (with a reason: the console's message log)
Resender = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.AGENT))]


@router.get(
    "/patients/{patient_id}/messages",
    summary="A patient's messages on every channel, newest first",
    description=(
        "Patients read their own (and their family members'). Staff give a `reason`; "
        "each staff read leaves an audit record. Addresses are masked."
    ),
    responses=problem_responses_doc(400, 403),
)
async def patient_messages(
    ctx: Ctx,
    caller: Caller,
    patient_id: str,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    before: Annotated[str | None, Query(max_length=64)] = None,
    reason: AccessReason = None,
) -> list[MessageView]:
    await ctx.recipients.check_access(caller, patient_id)
    require_reason(caller, reason, "a patient's messages")
    if caller.is_staff:
        await ctx.runtime.audit.record(
            caller,
            "notification.messages.read",
            patient_id=patient_id,
            resource=f"patient:{patient_id}:messages",
            reason=reason,
        )
    org_id = org_filter(caller) if caller.is_staff else None  # their organization's only
    return await ctx.messages.for_patient(patient_id, limit=limit, before=before, org_id=org_id)


@router.post(
    "/admin/messages/{message_id}/retry",
    summary="Send a failed message again on its channel (admins; agents with a reason)",
    responses=problem_responses_doc(400, 404, 409),
)
async def retry_message(
    ctx: Ctx,
    admin: Resender,
    message_id: str,
    reason: AccessReason = None,
) -> dict[str, str]:
    if not admin.has_any(Role.ADMIN):
        require_reason(admin, reason, "sending a patient's message again")
    doc = await ctx.messages.get(message_id)
    if doc is None:
        raise NotFound("message_not_found", "no such message")
    ensure_org(admin, doc.get("org_id"))  # staff retry their own organization's messages
    if not await ctx.delivery.retry_failed(doc, admin, ctx.runtime.audit, reason):
        raise Conflict(
            "message_not_failed", f"only failed messages are retried; this one is {doc['status']}"
        )
    return {"message_id": message_id, "status": Status.QUEUED.value}
