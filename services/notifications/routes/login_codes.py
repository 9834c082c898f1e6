"""Routes: login codes (the gateway asks; the patient gets an SMS at once, day or night)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from services.notifications.messages import Source
from services.notifications.routes.deps import PREFIX, Ctx, Service
from shared.ids import new_id
from shared.problems import ServiceUnavailable, problem_responses_doc

router = APIRouter(prefix=PREFIX, tags=["notifications: login codes"])
LOGIN_KIND = "auth.login_code"


class LoginCodeRequest(BaseModel):
    phone: str = Field(pattern=r"^1[3-9]\d{9}$")
    code: str = Field(pattern=r"^\d{4,8}$")
    minutes: int = Field(5, ge=1, le=30)
    language: str = Field("zh-CN", pattern=r"^(zh-CN|en)$")
    request_id: str | None = Field(None, max_length=64, description="dedupe: one SMS per id")


class LoginCodeSent(BaseModel):
    message_ids: list[str]


@router.post(
    "/login-codes",
    status_code=202,
    summary="Send a login code by SMS (service callers only: the gateway)",
    responses=problem_responses_doc(403, 422, 503),
)
async def send_login_code(
    ctx: Ctx, caller: Service, body: Annotated[LoginCodeRequest, Body()]
) -> LoginCodeSent:
    kind = ctx.message_kinds.get(LOGIN_KIND)
    if kind is None:
        raise ServiceUnavailable("kind_missing", "the login-code template is not installed")
    source = Source(
        id=body.request_id or new_id(), event_type=None, patient_id=None, account_id=None
    )
    context = {"code": body.code, "minutes": body.minutes}
    ids = await ctx.dispatcher.send_now(
        kind, source, context, address=body.phone, language=body.language
    )
    return LoginCodeSent(message_ids=ids)
