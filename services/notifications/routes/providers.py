"""Routes: provider callbacks (delivery receipts) and the local sandbox's records.

Aliyun pushes SMS delivery reports to the URL configured in its console; we accept them
only with the shared token in the query string. WeChat pushes ``subscribe_msg_sent_event``
with a signature over our callback token. A report about an unknown message is counted and
acknowledged (the provider would otherwise retry it forever).
"""

from __future__ import annotations

import hmac
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from services.notifications.providers import aliyun_sms, wechat
from services.notifications.providers.base import Receipt
from services.notifications.routes.deps import PREFIX, Ctx, Operator
from shared.access_reason import AccessReason
from shared.problems import BadRequest, NotFound, Unauthorized, problem_responses_doc

router = APIRouter(prefix=PREFIX, tags=["notifications: providers"])
MAX_CALLBACK_BYTES = 256 * 1024


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_CALLBACK_BYTES:
        raise BadRequest("body_too_large", "callback body too large")
    try:
        return json.loads(raw or b"null")
    except ValueError as exc:
        raise BadRequest("invalid_json", "the body is not JSON") from exc


class AliyunReceiptsAck(BaseModel):
    """Aliyun's expected acknowledgement, with how many receipts had each outcome."""

    code: int
    msg: str
    outcomes: dict[str, int]


@router.post(
    "/providers/aliyun/sms-receipts",
    summary="Aliyun SMS delivery reports (SmsReport HTTP push)",
    responses=problem_responses_doc(400, 401),
)
async def aliyun_receipts(
    ctx: Ctx, request: Request, token: Annotated[str, Query(max_length=200)] = ""
) -> AliyunReceiptsAck:
    expected = ctx.settings.aliyun_receipt_token
    if not expected or not hmac.compare_digest(token, expected):
        raise Unauthorized("callback_token_invalid", "missing or wrong callback token")
    receipts = aliyun_sms.parse_receipts(await _json_body(request))
    outcomes = await ctx.receipts.apply_all(receipts)
    return AliyunReceiptsAck(code=0, msg="成功", outcomes=outcomes)


@router.get("/providers/wechat/events", response_class=PlainTextResponse)
async def wechat_verify(
    ctx: Ctx,
    signature: Annotated[str, Query(max_length=64)],
    timestamp: Annotated[str, Query(max_length=32)],
    nonce: Annotated[str, Query(max_length=64)],
    echostr: Annotated[str, Query(max_length=128)],
) -> str:
    """WeChat's server URL check: echo ``echostr`` when the signature is ours."""
    _check_wechat(ctx, signature, timestamp, nonce)
    return echostr


@router.post(
    "/providers/wechat/events",
    response_class=PlainTextResponse,
    summary="WeChat message push: subscribe_msg_sent_event",
    responses=problem_responses_doc(400, 401),
)
async def wechat_events(
    ctx: Ctx,
    request: Request,
    signature: Annotated[str, Query(max_length=64)],
    timestamp: Annotated[str, Query(max_length=32)],
    nonce: Annotated[str, Query(max_length=64)],
) -> str:
    _check_wechat(ctx, signature, timestamp, nonce)
    await ctx.receipts.apply_all(wechat.parse_sent_event(await _json_body(request)))
    return "success"


def _check_wechat(ctx: Ctx, signature: str, timestamp: str, nonce: str) -> None:
    token = ctx.settings.wechat_callback_token
    if not token or not wechat.verify_signature(token, signature, timestamp, nonce):
        raise Unauthorized("callback_signature_invalid", "bad WeChat signature")


class SandboxReceipt(BaseModel):
    provider_message_id: str = Field(min_length=1, max_length=64)
    delivered: bool
    error_code: str | None = Field(None, max_length=64)


@router.post(
    "/sandbox/receipts",
    summary="Report a sandbox delivery's outcome, as a provider would (admin, service)",
    responses=problem_responses_doc(404),
)
async def sandbox_receipt(ctx: Ctx, operator: Operator, body: SandboxReceipt) -> dict[str, str]:
    outcome = await ctx.receipts.apply(
        Receipt(
            provider="sandbox",
            provider_message_id=body.provider_message_id,
            delivered=body.delivered,
            error_code=body.error_code,
        )
    )
    if outcome == "unknown":
        raise NotFound("message_not_found", "no sandbox message with this id")
    return {"outcome": outcome}


class SandboxDelivery(BaseModel):
    id: str
    message_id: str
    channel: str
    kind: str
    patient_id: str | None
    address_masked: str
    language: str
    title: str
    body: str
    fields: dict[str, str]
    page: str | None
    at: datetime


@router.get(
    "/sandbox/deliveries",
    summary="What the sandbox provider delivered, oldest first (admin, service)",
)
async def sandbox_deliveries(
    ctx: Ctx,
    operator: Operator,
    patient_id: Annotated[str | None, Query(max_length=64)] = None,
    channel: Annotated[str | None, Query(max_length=16)] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    reason: AccessReason = None,
) -> list[SandboxDelivery]:
    docs = await ctx.sandbox.find(patient_id=patient_id, channel=channel, kind=kind, limit=limit)
    await ctx.runtime.audit.record(  # delivered texts are patients' data
        operator,
        "notification.sandbox.read",
        patient_id=patient_id,
        resource="sandbox:deliveries",
        reason=reason,
        details={"channel": channel, "kind": kind, "returned": len(docs)},
    )
    return [SandboxDelivery(id=d["_id"], **{k: d.get(k) for k in _FIELDS}) for d in docs]


_FIELDS = [f for f in SandboxDelivery.model_fields if f != "id"]
