"""Provider callbacks are authenticated: a forged, stale or replayed WeChat push and a forged
Aliyun receipt (bad token, address outside the allowlist) get a problem and change nothing;
a repeated genuine receipt changes nothing either."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from services.notifications.providers.aliyun_sms import receipt_token
from services.notifications.settings import NotificationsSettings
from services.notifications.store import MESSAGES
from shared.mongo import Document
from tests.integration.notifications import safe_mode
from tests.integration.notifications.conftest import (
    NotificationsApi,
    booked,
    facts,
    running_notifications,
)

pytestmark = pytest.mark.integration

WX = "/v1/notifications/providers/wechat/events"
ALIYUN = "/v1/notifications/providers/aliyun/sms-receipts"
RECEIPT_SECRET = "per-deployment-receipt-secret"
MSG_ID = "1864323726461255680"
BIZ_ID = "704516163745^0"


def callback_settings(build: Callable[..., NotificationsSettings], **extra: Any) -> Any:
    values: dict[str, Any] = {
        "sandbox_auto_deliver": False,  # messages stay "sent" until a receipt comes
        "wechat_callback_token": safe_mode.TOKEN,
        "wechat_encoding_aes_key": safe_mode.ENCODING_AES_KEY,
        "wechat_app_id": safe_mode.APP_ID,
        "wechat_callback_window_seconds": 300,
        "aliyun_receipt_secret": RECEIPT_SECRET,
    }
    return build(**{**values, **extra})


@pytest.fixture
async def api(notifications_settings: Any, minter: Any) -> AsyncIterator[NotificationsApi]:
    async with running_notifications(callback_settings(notifications_settings), minter) as api:
        yield api


async def sent_message(api: NotificationsApi, provider: str, provider_message_id: str) -> Document:
    """A booked SMS the sandbox sent and nobody confirmed, labelled as ``provider``'s send."""
    patient_id, account_id, _ = await api.register_patient()
    await api.publish(booked(facts(patient_id, account_id)))
    [sms] = await api.wait_for_sandbox(1, patient_id=patient_id, channel="sms")
    db = api.ctx.runtime.db
    await db[MESSAGES].update_one(
        {"_id": sms["message_id"]},
        {"$set": {"provider": provider, "provider_message_id": provider_message_id}},
    )
    msg = await db[MESSAGES].find_one({"_id": sms["message_id"]})
    assert msg is not None
    assert msg["status"] == "sent"
    return msg


async def status(api: NotificationsApi, message_id: str) -> str:
    msg = await api.ctx.runtime.db[MESSAGES].find_one({"_id": message_id})
    assert msg is not None
    return str(msg["status"])


# --- WeChat safe mode ------------------------------------------------------------------------


async def test_wechat_push_in_safe_mode_is_applied_once(api: NotificationsApi) -> None:
    msg = await sent_message(api, "wechat", MSG_ID)
    query, body = safe_mode.push(safe_mode.sent_event_json(MSG_ID))
    pushed = await api.client.post(WX, params=query, content=body)
    assert pushed.status_code == 200, pushed.text
    assert pushed.text == "success"
    assert await status(api, msg["_id"]) == "delivered"

    replayed = await api.client.post(WX, params=query, content=body)
    assert replayed.status_code == 401
    assert replayed.json()["code"] == "callback_replayed"


async def test_wechat_xml_push_is_applied(api: NotificationsApi) -> None:
    msg = await sent_message(api, "wechat", MSG_ID)
    query, body = safe_mode.push(safe_mode.sent_event_xml(MSG_ID), xml=True)
    pushed = await api.client.post(WX, params=query, content=body)
    assert pushed.status_code == 200, pushed.text
    assert await status(api, msg["_id"]) == "delivered"


async def test_forged_stale_and_replayed_wechat_pushes_change_nothing(
    api: NotificationsApi,
) -> None:
    msg = await sent_message(api, "wechat", MSG_ID)
    event = safe_mode.sent_event_json(MSG_ID, error_code="43101")  # would fail the message
    now = int(time.time())
    refused: dict[str, tuple[dict[str, str], bytes]] = {
        "wrong token": safe_mode.push(event, token="not-our-token"),
        "wrong aes key": safe_mode.push(event, key="Z" * 43),
        "other app": safe_mode.push(event, app_id="wx0000000000000000"),
        "stale": safe_mode.push(event, timestamp=now - 330),
        "from the future": safe_mode.push(event, timestamp=now + 330),
    }
    # the old scheme: a plain signature over token+timestamp+nonce and a clear body
    old_query = safe_mode.push(event)[0]
    old_query.pop("msg_signature")
    refused["plain signature"] = (old_query, event)
    refused["no credentials, no body"] = ({"signature": "0" * 40, "timestamp": "1"}, b"")
    # a genuine push's signature over someone else's body
    query, _ = safe_mode.push(event)
    refused["body swapped"] = (query, safe_mode.push(safe_mode.sent_event_json("1"))[1])
    for name, (q, b) in refused.items():
        reply = await api.client.post(WX, params=q, content=b)
        assert reply.status_code == 401, (name, reply.text)
        assert reply.headers["content-type"].startswith("application/problem+json"), name
    assert await status(api, msg["_id"]) == "sent"

    # a genuine push is taken once: its replay (same timestamp and nonce) is refused
    query, body = safe_mode.push(event)
    assert (await api.client.post(WX, params=query, content=body)).status_code == 200
    assert await status(api, msg["_id"]) == "failed"
    await api.ctx.runtime.db[MESSAGES].update_one(
        {"_id": msg["_id"]}, {"$set": {"status": "sent"}}
    )  # as if nothing had come: only the nonce stands in the replay's way
    replay = await api.client.post(WX, params=query, content=body)
    assert replay.status_code == 401
    assert replay.json()["code"] == "callback_replayed"
    assert await status(api, msg["_id"]) == "sent"


async def test_wechat_url_check_needs_a_fresh_signature(api: NotificationsApi) -> None:
    query, _ = safe_mode.push(b"{}")
    fresh = {k: query[k] for k in ("signature", "timestamp", "nonce")}
    ok = await api.client.get(WX, params={**fresh, "echostr": "hello"})
    assert (ok.status_code, ok.text) == (200, "hello")
    stale_query, _ = safe_mode.push(b"{}", timestamp=int(time.time()) - 3600)
    stale = {k: stale_query[k] for k in ("signature", "timestamp", "nonce")}
    refused = await api.client.get(WX, params={**stale, "echostr": "hello"})
    assert refused.status_code == 401
    assert refused.json()["code"] == "callback_timestamp_out_of_window"


async def test_wechat_pushes_are_refused_without_an_aes_key(
    notifications_settings: Any, minter: Any
) -> None:
    settings = callback_settings(notifications_settings, wechat_encoding_aes_key="")
    async with running_notifications(settings, minter) as api:
        query, body = safe_mode.push(safe_mode.sent_event_json(MSG_ID))
        assert (await api.client.post(WX, params=query, content=body)).status_code == 401


# --- Aliyun receipts -------------------------------------------------------------------------


def report(success: bool = True) -> list[dict[str, Any]]:
    return [
        {
            "phone_number": "13800000000",
            "send_time": "2026-11-24 10:00:00",
            "report_time": "2026-11-24 10:00:05",
            "success": success,
            "err_code": "DELIVERED" if success else "MK:0001",
            "err_msg": "用户接收成功" if success else "失败",
            "biz_id": BIZ_ID,
            "out_id": "x",
        }
    ]


async def test_aliyun_receipt_needs_the_derived_token(api: NotificationsApi) -> None:
    msg = await sent_message(api, "aliyun", BIZ_ID)
    for token in ("", RECEIPT_SECRET, receipt_token("another deployment's secret"), "x" * 64):
        reply = await api.client.post(ALIYUN, params={"token": token}, json=report())
        assert reply.status_code == 401, token
        assert reply.json()["code"] == "callback_token_invalid"
    assert await status(api, msg["_id"]) == "sent"

    ok = await api.client.post(
        ALIYUN, params={"token": receipt_token(RECEIPT_SECRET)}, json=report()
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["outcomes"] == {"delivered": 1}
    assert await status(api, msg["_id"]) == "delivered"


async def test_a_replayed_aliyun_receipt_changes_nothing(api: NotificationsApi) -> None:
    msg = await sent_message(api, "aliyun", BIZ_ID)
    token = {"token": receipt_token(RECEIPT_SECRET)}
    first = await api.client.post(ALIYUN, params=token, json=report(success=False))
    assert first.json()["outcomes"] == {"failed": 1}
    after_first = await api.ctx.runtime.db[MESSAGES].find({}).sort("_id", 1).to_list()

    replies = await asyncio.gather(
        *(api.client.post(ALIYUN, params=token, json=report(success=s)) for s in (False, True))
    )
    assert [r.json()["outcomes"] for r in replies] == [{"duplicate": 1}, {"duplicate": 1}]
    assert await status(api, msg["_id"]) == "failed"
    # no second fallback message, no change to any message
    assert await api.ctx.runtime.db[MESSAGES].find({}).sort("_id", 1).to_list() == after_first


async def test_aliyun_receipts_only_from_allowed_networks(
    notifications_settings: Any, minter: Any
) -> None:
    settings = callback_settings(
        notifications_settings, aliyun_receipt_allowed_networks=["10.0.0.0/8", "2001:db8::/32"]
    )
    token = {"token": receipt_token(RECEIPT_SECRET)}
    async with running_notifications(settings, minter) as api:
        msg = await sent_message(api, "aliyun", BIZ_ID)
        # uvicorn believes X-Forwarded-For from 127.0.0.1 (a gateway on the same host)
        for forwarded in (None, "192.0.2.7", "10.1.2.3, 192.0.2.7"):
            headers = {"x-forwarded-for": forwarded} if forwarded else {}
            reply = await api.client.post(ALIYUN, params=token, json=report(), headers=headers)
            assert reply.status_code == 403, forwarded
            assert reply.json()["code"] == "callback_source_forbidden"
        assert await status(api, msg["_id"]) == "sent"
        headers = {"x-forwarded-for": "192.0.2.7, 10.1.2.3"}  # from Aliyun's network
        ok = await api.client.post(ALIYUN, params=token, json=report(), headers=headers)
        assert ok.status_code == 200, ok.text
        assert await status(api, msg["_id"]) == "delivered"
