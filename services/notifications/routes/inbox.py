"""Routes: the in-app inbox of the caller's account, and its live stream (server-sent events).

Patient accounts read their messages; staff accounts read the alerts addressed to them
(``audience = "staff"`` kinds, e.g. a follow-up risk flag for the responsible doctor).
Either way only the caller's own inbox (the token's subject); no service caller.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from services.notifications.inbox import InboxItem
from services.notifications.routes.deps import PREFIX, Ctx, PatientOrStaff
from shared.problems import problem_responses_doc

router = APIRouter(prefix=PREFIX, tags=["notifications: inbox"])


class InboxPage(BaseModel):
    items: list[InboxItem]
    unread: int
    next_before: str | None


@router.get("/inbox", summary="My inbox, newest first", responses=problem_responses_doc(401, 403))
async def list_inbox(
    ctx: Ctx,
    caller: PatientOrStaff,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before: Annotated[str | None, Query(max_length=64, description="cursor: next_before")] = None,
    unread_only: bool = False,
) -> InboxPage:
    items = await ctx.inbox.page(
        caller.subject, limit=limit, before=before, unread_only=unread_only
    )
    return InboxPage(
        items=items,
        unread=await ctx.inbox.unread(caller.subject),
        next_before=items[-1].id if len(items) == limit else None,
    )


@router.get("/inbox/unread-count", summary="How many inbox items I have not read")
async def unread_count(ctx: Ctx, caller: PatientOrStaff) -> dict[str, int]:
    return {"unread": await ctx.inbox.unread(caller.subject)}


class InboxReadRequest(BaseModel):
    """Which inbox items to mark read: ``null`` (or no body) marks them all."""

    ids: list[str] | None = Field(None, max_length=200)


@router.post("/inbox/read", summary="Mark inbox items read (all of them when ids is null)")
async def mark_read(
    ctx: Ctx,
    caller: PatientOrStaff,
    body: InboxReadRequest | None = None,
) -> dict[str, int]:
    marked = await ctx.inbox.mark_read(caller.subject, body.ids if body else None)
    return {"marked": marked, "unread": await ctx.inbox.unread(caller.subject)}


@router.get(
    "/inbox/stream",
    summary="New inbox items as they arrive (server-sent events)",
    description=(
        "`text/event-stream`: an `event: message` per new item (its id as the event id), "
        "comment heartbeats while idle. Reconnect with `Last-Event-ID` to resume after the "
        "last item received."
    ),
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    ctx: Ctx,
    caller: PatientOrStaff,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=64)] = None,
) -> StreamingResponse:
    events = ctx.inbox.stream(
        caller.subject, last_event_id, heartbeat=ctx.settings.inbox_stream_heartbeat_seconds
    )
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
