"""Routes: a patient's notification preferences, WeChat binding and subscription consents."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Header, Query, Response

from services.notifications.preferences import PreferencesIn, PreferencesOut
from services.notifications.routes.deps import (
    PREFIX,
    Caller,
    Ctx,
    PatientAccount,
    PatientOrStaff,
)
from shared.audit import require_reason
from shared.outbox import Tx
from shared.problems import BadRequest, problem_responses_doc

router = APIRouter(prefix=PREFIX, tags=["notifications: preferences"])
Reason = Annotated[str | None, Query(min_length=2, max_length=200)]


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
    description="Staff give a `reason`; each staff read leaves an audit record.",
    responses=problem_responses_doc(400, 403),
)
async def get_preferences(
    ctx: Ctx, caller: Caller, patient_id: str, response: Response, reason: Reason = None
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
    summary="Change a patient's notification preferences",
    description=(
        "Channels on/off (WeChat, SMS, voice; the inbox stays on), language (zh-CN, en) and "
        "quiet hours (null turns them off). Mandatory messages — clinic cancellations, login "
        "codes — are sent whatever the settings. Send `If-Match` with the ETag you read: a "
        "stale one gets 409 `version_mismatch`. Staff changes are audited."
    ),
    responses=problem_responses_doc(400, 403, 409, 422),
)
async def put_preferences(
    ctx: Ctx,
    caller: PatientOrStaff,
    patient_id: str,
    body: PreferencesIn,
    response: Response,
    if_match: Annotated[str | None, Header(alias="If-Match", max_length=32)] = None,
    reason: Reason = None,
) -> PreferencesOut:
    await ctx.recipients.check_access(caller, patient_id)
    view = await ctx.preferences.update(
        patient_id, body, expected_version=_parse_if_match(if_match), by=caller.subject
    )
    if caller.is_staff:
        await ctx.runtime.audit.record(
            caller,
            "notification.preferences.update",
            patient_id=patient_id,
            resource=f"preferences:{patient_id}",
            reason=reason or "patient request",
        )
    response.headers["ETag"] = _etag(view.version)
    return view


@router.put("/me/wechat", summary="Bind my account's WeChat openid (from the mini-program login)")
async def bind_wechat(
    ctx: Ctx,
    caller: PatientAccount,
    openid: Annotated[str, Body(embed=True, min_length=6, max_length=64, pattern=r"^[\w-]+$")],
) -> dict[str, bool]:
    await ctx.recipients.bind_wechat(caller.subject, openid)
    return {"bound": True}


@router.get("/me/wechat", summary="Whether WeChat messages can reach my account (bound openid)")
async def wechat_binding(ctx: Ctx, caller: PatientAccount) -> dict[str, bool]:
    return {"bound": bool(await ctx.recipients.wechat_openid(caller.subject))}


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
    results: Annotated[
        dict[str, Literal["accept", "reject", "ban", "filter"]], Body(embed=True, max_length=20)
    ],
) -> dict[str, object]:
    kinds = frozenset(ctx.catalog.kinds)
    unknown = [t for t in results if ctx.consents.kind_for(t, kinds) is None]
    if unknown:
        raise BadRequest(
            "template_unknown",
            f"unknown template ids: {', '.join(sorted(unknown))}",
            detail_zh="未知的订阅消息模板",
        )

    async def work(tx: Tx) -> None:
        for template, answer in results.items():
            kind = ctx.consents.kind_for(template, kinds)
            if answer == "accept" and kind is not None:
                await ctx.consents.grant(tx.session, caller.subject, kind, template)

    await ctx.runtime.outbox.transaction(work)
    return {"balances": await ctx.consents.balances_of(caller.subject)}


@router.get(
    "/me/wechat/consents", summary="My WeChat subscription consents left, and their history"
)
async def consents(ctx: Ctx, caller: PatientAccount) -> dict[str, object]:
    return {
        "balances": await ctx.consents.balances_of(caller.subject),
        "history": await ctx.consents.history(caller.subject),
    }
