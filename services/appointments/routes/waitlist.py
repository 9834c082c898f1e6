"""Routes: Waitlist (候补): join a full session; a freed slot is offered to the first in line."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from services.appointments.booking import Idempotency
from services.appointments.routes.deps import PREFIX, Caller, Ctx
from services.appointments.store import WAITLIST
from services.appointments.waitlist import JoinRequest, entry_view
from shared.idempotency import request_fingerprint
from shared.principal import Principal
from shared.problems import problem_responses_doc

router = APIRouter(prefix=PREFIX, tags=["appointments: waitlist"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]
Reason = Annotated[str | None, Query(min_length=1, max_length=200)]


async def once(
    ctx: Ctx,
    caller: Principal,
    operation: str,
    key: str | None,
    body: dict[str, Any],
    response: Response,
    run: Callable[[Idempotency | None], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """Run a command at most once per ``Idempotency-Key``: a retry gets the first answer."""
    key = ctx.idempotency.validate(key)
    if key is None:
        return await run(None)
    scope = f"{caller.subject}:{operation}"
    stored = await ctx.idempotency.begin(scope, key, request_fingerprint(body))
    if stored is not None:
        response.status_code = stored.status
        response.headers["Idempotent-Replayed"] = "true"
        return stored.body
    try:
        return await run(Idempotency(ctx.idempotency, scope, key))
    except BaseException:
        await ctx.idempotency.release(scope, key)
        raise


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
)
async def join(
    ctx: Ctx,
    caller: Caller,
    body: JoinRequest,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    async def run(idempotency: Idempotency | None) -> dict[str, Any]:
        return await ctx.waitlist.join(caller, body, idempotency=idempotency)

    fingerprint = body.model_dump(mode="json")
    return await once(ctx, caller, "waitlist.join", idempotency_key, fingerprint, response, run)


@router.get("/waitlist", summary="My account's waitlist entries, newest first")
async def my_entries(
    ctx: Ctx,
    caller: Caller,
    patient_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(pattern=r"^[a-z]{4,10}$")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    """Each entry with its place in line (``position``, waiting only) and its status:
    waiting, offered (with ``offer_expires_at`` and the held ``slot``), booked, expired,
    left or closed. Staff pass ``patient_id`` (the read is audited)."""
    if patient_id is not None:
        ids = [(await ctx.patients.get_for(caller, patient_id))["_id"]]
        await ctx.runtime.audit.record(
            caller, "waitlist.list", patient_id=patient_id, resource=f"patient:{patient_id}"
        )
    else:
        ids = [p["_id"] for p in await ctx.patients.for_account(caller.subject)]
    query: dict[str, Any] = {"patient_id": {"$in": ids}}
    if status is not None:
        query["status"] = status
    docs = await ctx.runtime.db[WAITLIST].find(query).sort("_id", -1).to_list(limit)
    items = []
    for doc in docs:
        policy = await ctx.policies.for_org(doc["org_id"])
        items.append(entry_view(doc, await ctx.waitlist.position(doc), policy.timezone))
    return {"items": items}


@router.get(
    "/waitlist/{entry_id}",
    summary="One waitlist entry",
    responses=problem_responses_doc(404),
)
async def get_entry(ctx: Ctx, caller: Caller, entry_id: str) -> dict[str, Any]:
    entry = await ctx.waitlist.owned(caller, entry_id)
    await ctx.runtime.audit.record(
        caller, "waitlist.read", patient_id=entry["patient_id"], resource=f"waitlist:{entry_id}"
    )
    policy = await ctx.policies.for_org(entry["org_id"])
    return entry_view(entry, await ctx.waitlist.position(entry), policy.timezone)


@router.delete(
    "/waitlist/{entry_id}",
    summary="Leave the waitlist",
    description="An outstanding offer passes to the next in line. Returns the entry (`left`).",
    responses=problem_responses_doc(404, 409),
)
async def leave(ctx: Ctx, caller: Caller, entry_id: str, reason: Reason = None) -> dict[str, Any]:
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
)
async def confirm(
    ctx: Ctx,
    caller: Caller,
    entry_id: str,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    async def run(idempotency: Idempotency | None) -> dict[str, Any]:
        return await ctx.waitlist.confirm(caller, entry_id, idempotency=idempotency)

    fingerprint = {"entry_id": entry_id}
    return await once(ctx, caller, "waitlist.confirm", idempotency_key, fingerprint, response, run)
