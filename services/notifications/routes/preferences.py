"""Routes: a patient's notification preferences, WeChat binding and subscription consents."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Response
from pydantic import BaseModel, Field

from services.notifications.preferences import PreferencesIn, PreferencesOut, PreferencesPatch
from services.notifications.routes.deps import (
    PREFIX,
    Caller,
    Ctx,
    PatientAccount,
    PatientOrStaff,
    Service,
)
from shared.access_reason import AccessReason
from shared.audit import require_reason
from shared.problems import BadRequest, problem_responses_doc

router = APIRouter(prefix=PREFIX, tags=["notifications: preferences"])
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=32)]


def _etag(version: int) -> str:
    return f'"{version}"'


def _parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip().removeprefix("W/").strip('"'))
    except ValueError as exc:
        raise BadRequest(
            "if_match_invalid", "If-Match must be the ETag of the preferences"
        ) from exc


@router.get(
    "/patients/{patient_id}/preferences",
    summary="A patient's notification preferences",
    description=(
        "Every push channel with its state, the language and the quiet hours (null: none). "
        "Staff give a `reason` (query or `X-Access-Reason`); each staff read is audited."
    ),
    responses=problem_responses_doc(400, 403),
)
async def get_preferences(
    ctx: Ctx, caller: Caller, patient_id: str, response: Response, reason: AccessReason = None
) -> PreferencesOut:
    require_reason(caller, reason, "a patient's preferences")
    await ctx.recipients.check_access(caller, patient_id)
    view = await ctx.preferences.view(patient_id)
    if caller.is_staff:
        await ctx.runtime.audit.record(
            caller,
            "notification.preferences.read",
            patient_id=patient_id,
            resource=f"preferences:{patient_id}",
            reason=reason,
        )
    response.headers["ETag"] = _etag(view.version)
    return view


@router.put(
    "/patients/{patient_id}/preferences",
    summary="Replace a patient's notification preferences",
    description=(
        "Replaces them all: a channel left out of `channels` is on, quiet hours left out "
        "are off (to change one field, use PATCH). Channels on/off (WeChat, SMS, voice; the "
        "inbox stays on), language (zh-CN, en) and quiet hours (null: none; a start equal "
        "to the end is refused). Mandatory messages — clinic cancellations, login codes — "
        "are sent whatever the settings. Send `If-Match` with the ETag you read: a stale "
        "one gets 409 `version_mismatch`. Answers with the full effective preferences. "
        "Staff give a `reason` (query or `X-Access-Reason`); their changes are audited."
    ),
    responses=problem_responses_doc(400, 403, 409, 422),
)
async def put_preferences(
    ctx: Ctx,
    caller: PatientOrStaff,
    patient_id: str,
    body: PreferencesIn,
    response: Response,
    if_match: IfMatch = None,
    reason: AccessReason = None,
) -> PreferencesOut:
    require_reason(caller, reason, "changing a patient's preferences")
    await ctx.recipients.check_access(caller, patient_id)
    view = await ctx.preferences.update(
        patient_id, body, expected_version=_parse_if_match(if_match), by=caller.subject
    )
    return await _changed(ctx, caller, patient_id, view, response, reason)


@router.patch(
    "/patients/{patient_id}/preferences",
    summary="Change some of a patient's notification preferences",
    description=(
        "Only the fields sent change, and in `channels` only the channels sent "
        '(`{"channels": {"sms": false}}` leaves WeChat and voice as they are); '
        "`quiet_hours: null` turns quiet hours off, leaving it out keeps them. `If-Match` "
        "as for PUT (without it, the change is merged into the latest version). Answers "
        "with the full effective preferences. Staff give a `reason`; audited."
    ),
    responses=problem_responses_doc(400, 403, 409, 422),
)
async def patch_preferences(
    ctx: Ctx,
    caller: PatientOrStaff,
    patient_id: str,
    body: PreferencesPatch,
    response: Response,
    if_match: IfMatch = None,
    reason: AccessReason = None,
) -> PreferencesOut:
    require_reason(caller, reason, "changing a patient's preferences")
    await ctx.recipients.check_access(caller, patient_id)
    view = await ctx.preferences.patch(
        patient_id, body, expected_version=_parse_if_match(if_match), by=caller.subject
    )
    return await _changed(ctx, caller, patient_id, view, response, reason)


async def _changed(
    ctx: Ctx,
    caller: PatientOrStaff,
    patient_id: str,
    view: PreferencesOut,
    response: Response,
    reason: str | None,
) -> PreferencesOut:
    if caller.is_staff:
        await ctx.runtime.audit.record(
            caller,
            "notification.preferences.update",
            patient_id=patient_id,
            resource=f"preferences:{patient_id}",
            reason=reason,
        )
    response.headers["ETag"] = _etag(view.version)
    return view


class WechatBinding(BaseModel):
    """The mini-program's openid of this account (from its wx.login)."""

    openid: str = Field(min_length=6, max_length=64, pattern=r"^[\w-]+$")


class SubscribeResults(BaseModel):
    """`wx.requestSubscribeMessage` results: template id (or message kind) -> answer."""

    results: dict[str, Literal["accept", "reject", "ban", "filter"]] = Field(max_length=20)


class WechatBound(BaseModel):
    bound: bool


class ConsentBalances(BaseModel):
    balances: dict[str, int] = Field(description="message kind -> WeChat messages allowed")


class ConsentsView(ConsentBalances):
    history: list[dict[str, Any]] = Field(description="grants and uses, newest first")


@router.put(
    "/accounts/{account_id}/wechat",
    summary="Bind an account's WeChat openid (the gateway, after WeChat's code2session)",
    description="Service callers only: the gateway learns the openid from WeChat itself "
    "(a fresh wx.login code; `PUT /v1/auth/me/wechat`), never from a client.",
    responses=problem_responses_doc(403),
)
async def bind_wechat(
    ctx: Ctx,
    caller: Service,
    account_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[\w.:-]+$")],
    body: WechatBinding,
) -> WechatBound:
    await ctx.recipients.bind_wechat(account_id, body.openid)
    return WechatBound(bound=True)


@router.get("/me/wechat", summary="Whether WeChat messages can reach my account (bound openid)")
async def wechat_binding(ctx: Ctx, caller: PatientAccount) -> WechatBound:
    return WechatBound(bound=bool(await ctx.recipients.wechat_openid(caller.subject)))


@router.post(
    "/me/wechat/consents",
    summary="Report the result of wx.requestSubscribeMessage",
    description=(
        "`results` maps each WeChat template id (or message kind) to `accept`, `reject` or "
        "`ban`, as `wx.requestSubscribeMessage` returned it. Each accept allows one WeChat "
        "message of that kind; without one, the message goes by the next channel."
    ),
    responses=problem_responses_doc(422),
)
async def report_consents(
    ctx: Ctx,
    caller: PatientAccount,
    body: SubscribeResults,
) -> ConsentBalances:
    results = body.results
    kinds = frozenset(ctx.message_kinds.kinds)
    unknown = [t for t in results if ctx.consents.kind_for(t, kinds) is None]
    if unknown:
        raise BadRequest(
            "template_unknown",
            f"unknown template ids: {', '.join(sorted(unknown))}",
            detail_zh="未知的订阅消息模板",
        )
    await ctx.consents.record_results(caller.subject, results, kinds)
    return ConsentBalances(balances=await ctx.consents.balances_of(caller.subject))


@router.get(
    "/me/wechat/consents", summary="My WeChat subscription consents left, and their history"
)
async def consents(ctx: Ctx, caller: PatientAccount) -> ConsentsView:
    return ConsentsView(
        balances=await ctx.consents.balances_of(caller.subject),
        history=await ctx.consents.history(caller.subject),
    )
