"""Routes: provider callbacks (delivery receipts) and the local sandbox's records.

Aliyun pushes SMS delivery reports to the URL configured in its console; we accept them
only with the deployment's receipt token in the query string (an HMAC of
``aliyun_receipt_secret``, :func:`~services.notifications.providers.aliyun_sms.receipt_token`)
and, when ``aliyun_receipt_allowed_networks`` is set, only from those networks. A repeated
report changes nothing (a message leaves ``sent`` once).

WeChat pushes ``subscribe_msg_sent_event`` in safe mode: the body is encrypted with the
EncodingAESKey and ``msg_signature`` covers it; the timestamp must be within the window
and each (timestamp, nonce) is accepted once (:mod:`services.notifications.callbacks`).
A report about an unknown message is counted and acknowledged (the provider would
otherwise retry it forever). No token, signature or nonce is logged.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from services.notifications.providers import aliyun_sms, wechat
from services.notifications.providers.base import Receipt
from services.notifications.providers.wechat_crypto import SafeModeError, open_envelope
from services.notifications.routes.deps import PREFIX, Ctx, Operator
from shared.access_reason import AccessReason
from shared.problems import BadRequest, NotFound, Unauthorized, problem_responses_doc
from shared.scoping import org_filter

router = APIRouter(prefix=PREFIX, tags=["notifications: providers"])
log = structlog.get_logger(__name__)
MAX_CALLBACK_BYTES = 256 * 1024


async def _raw_body(request: Request) -> bytes:
    raw = await request.body()
    if len(raw) > MAX_CALLBACK_BYTES:
        raise BadRequest("body_too_large", "callback body too large")
    return raw


async def _json_body(request: Request) -> Any:
    raw = await _raw_body(request)
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
    responses=problem_responses_doc(400, 401, 403),
)
async def aliyun_receipts(
    ctx: Ctx, request: Request, token: Annotated[str, Query(max_length=200)] = ""
) -> AliyunReceiptsAck:
    ctx.callbacks.check_source(request)
    if not aliyun_sms.verify_receipt_token(ctx.settings.aliyun_receipt_secret, token):
        log.warning("callback.refused", provider="aliyun", code="callback_token_invalid")
        raise Unauthorized("callback_token_invalid", "missing or wrong callback token")
    receipts = aliyun_sms.parse_receipts(await _json_body(request))
    outcomes = await ctx.receipts.apply_all(receipts)
    return AliyunReceiptsAck(code=0, msg="成功", outcomes=outcomes)


@router.get(
    "/providers/wechat/events",
    response_class=PlainTextResponse,
    summary="WeChat's server URL check: echo echostr when the signature is ours",
    responses=problem_responses_doc(401),
)
async def wechat_verify(
    ctx: Ctx,
    signature: Annotated[str, Query(max_length=64)] = "",
    timestamp: Annotated[str, Query(max_length=32)] = "",
    nonce: Annotated[str, Query(max_length=64)] = "",
    echostr: Annotated[str, Query(max_length=128)] = "",
) -> str:
    """WeChat's server URL check: echo ``echostr`` when the signature is ours and fresh."""
    token = ctx.settings.wechat_callback_token
    if not token or not wechat.verify_signature(token, signature, timestamp, nonce):
        log.warning("callback.refused", provider="wechat", code="callback_signature_invalid")
        raise Unauthorized("callback_signature_invalid", "bad WeChat signature")
    ctx.callbacks.check_timestamp(timestamp)
    return echostr


@router.post(
    "/providers/wechat/events",
    response_class=PlainTextResponse,
    summary="WeChat message push in safe mode: subscribe_msg_sent_event",
    responses=problem_responses_doc(400, 401),
)
async def wechat_events(
    ctx: Ctx,
    request: Request,
    msg_signature: Annotated[str, Query(max_length=64)] = "",
    timestamp: Annotated[str, Query(max_length=32)] = "",
    nonce: Annotated[str, Query(max_length=64)] = "",
) -> str:
    settings = ctx.settings
    if not (settings.wechat_callback_token and settings.wechat_encoding_aes_key):
        raise Unauthorized("callback_signature_invalid", "WeChat pushes are not configured")
    if not msg_signature or not nonce:
        raise Unauthorized("callback_signature_invalid", "msg_signature and nonce are required")
    ctx.callbacks.check_timestamp(timestamp)
    raw = await _raw_body(request)
    try:
        message = open_envelope(
            raw,
            token=settings.wechat_callback_token,
            encoding_aes_key=settings.wechat_encoding_aes_key,
            app_id=settings.wechat_app_id,
            signature=msg_signature,
            timestamp=timestamp,
            nonce=nonce,
        )
    except SafeModeError as exc:
        log.warning("callback.refused", provider="wechat", code=exc.code)
        if exc.code in ("body_invalid", "encrypt_missing"):
            raise BadRequest("callback_body_invalid", "not a safe-mode envelope") from exc
        raise Unauthorized("callback_signature_invalid", "bad WeChat push") from exc
    await ctx.callbacks.claim_nonce("wechat", timestamp, nonce)
    try:
        await ctx.receipts.apply_all(wechat.parse_sent_event(message))
    except Exception:
        await ctx.callbacks.release_nonce("wechat", timestamp, nonce)  # WeChat will retry
        raise
    return "success"


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
    docs = await ctx.sandbox.find(
        patient_id=patient_id,
        channel=channel,
        kind=kind,
        limit=limit,
        org_id=org_filter(operator),  # an organization's admin: its own messages only
    )
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
