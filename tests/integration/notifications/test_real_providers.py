"""The service with its real adapters, against local servers speaking Aliyun's and WeChat's
protocols: sends are signed and authorized, receipts come back through the callbacks."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.notifications.providers.aliyun_sms import receipt_token
from services.notifications.store import MESSAGES
from tests.integration.notifications import safe_mode
from tests.integration.notifications.conftest import (
    NotificationsApi,
    booked,
    cancelled,
    facts,
    running_notifications,
)
from tests.support.kafka import wait_until
from tests.support.provider_servers import (
    ALIYUN_KEY_ID,
    ALIYUN_KEY_SECRET,
    ALIYUN_SIGN_NAME,
    WECHAT_APP_ID,
    WECHAT_APP_SECRET,
    AliyunSmsServer,
    WechatServer,
)
from tests.support.server import serve

RECEIPT_SECRET = "aliyun-receipt-secret"


@pytest.fixture
async def real_api(
    notifications_settings: Any, minter: Any
) -> AsyncIterator[tuple[NotificationsApi, AliyunSmsServer, WechatServer]]:
    aliyun, weixin = AliyunSmsServer(), WechatServer()
    async with serve(aliyun.app) as aliyun_url, serve(weixin.app) as weixin_url:
        settings = notifications_settings(
            sms_provider="aliyun",
            wechat_provider="wechat",
            aliyun_sms_endpoint=f"{aliyun_url}/",
            aliyun_access_key_id=ALIYUN_KEY_ID,
            aliyun_access_key_secret=ALIYUN_KEY_SECRET,
            aliyun_sms_sign_name=ALIYUN_SIGN_NAME,
            aliyun_receipt_secret=RECEIPT_SECRET,
            wechat_api_base=weixin_url,
            wechat_app_id=WECHAT_APP_ID,
            wechat_app_secret=WECHAT_APP_SECRET,
            wechat_callback_token=safe_mode.TOKEN,
            wechat_encoding_aes_key=safe_mode.ENCODING_AES_KEY,
            sms_template_codes={
                "appointment.booked": "SMS_100001",
                "appointment.cancelled": "SMS_100002",
            },
            wechat_template_ids={"appointment.booked": "tpl-booked-1"},
        )
        async with running_notifications(settings, minter) as api:
            yield api, aliyun, weixin


async def test_wechat_send_and_its_receipt(
    real_api: tuple[NotificationsApi, AliyunSmsServer, WechatServer],
) -> None:
    api, _, weixin = real_api
    patient_id, account_id, _ = await api.register_patient()
    me = api.token(account_id)
    openid = "o7esq5PHRGBQYmeNyfG064wEFVpQ"
    bind = f"/v1/notifications/accounts/{account_id}/wechat"  # the gateway's call
    assert (
        await api.client.put(bind, json={"openid": openid}, headers=api.service)
    ).status_code == 200
    granted = await api.client.post(
        "/v1/notifications/me/wechat/consents",
        json={"results": {"tpl-booked-1": "accept", "tpl-unknown": "accept"}},
        headers=me,
    )
    assert granted.status_code == 400
    assert granted.json()["code"] == "template_unknown"
    granted = await api.client.post(
        "/v1/notifications/me/wechat/consents",
        json={"results": {"tpl-booked-1": "accept"}},
        headers=me,
    )
    assert granted.json()["balances"] == {"appointment.booked": 1}

    await api.publish(booked(facts(patient_id, account_id)))
    await wait_until(lambda: _sent(weixin), what="the WeChat send")
    [send] = weixin.sends
    assert send.touser == openid
    assert send.template_id == "tpl-booked-1"
    assert send.data["thing1"] == {"value": "心内科 王医生"}
    # the send is recorded on the message in the transaction after the provider's answer
    [msg] = await api.wait_for_messages(
        1, patient_id=patient_id, channel="wechat", sent_at={"$ne": None}
    )
    assert msg["status"] == "sent"
    assert msg["provider"] == "wechat"

    event = {
        "ToUserName": "gh_123", "FromUserName": openid, "CreateTime": int(time.time()),
        "MsgType": "event", "Event": "subscribe_msg_sent_event",
        "List": {"TemplateId": "tpl-booked-1", "MsgID": str(send.msgid), "ErrorCode": "0",
                 "ErrorStatus": "success"},
    }  # fmt: skip
    message = json.dumps(event).encode()
    url = "/v1/notifications/providers/wechat/events"
    query, body = safe_mode.push(message, token="wrong", app_id=WECHAT_APP_ID)
    forged = await api.client.post(url, params=query, content=body)
    assert forged.status_code == 401
    query, body = safe_mode.push(message, app_id=WECHAT_APP_ID)
    pushed = await api.client.post(url, params=query, content=body)
    assert pushed.status_code == 200
    assert pushed.text == "success"
    delivered = await api.ctx.runtime.db[MESSAGES].find_one({"_id": msg["_id"]})
    assert delivered is not None
    assert delivered["status"] == "delivered"


async def _sent(server: Any) -> bool:
    return len(server.sends) >= 1


async def test_aliyun_sms_send_signed_and_its_delivery_report(
    real_api: tuple[NotificationsApi, AliyunSmsServer, WechatServer],
) -> None:
    api, aliyun, _ = real_api
    patient_id, account_id, phone = await api.register_patient()
    await api.publish(cancelled(facts(patient_id, account_id)))
    await wait_until(lambda: _sent(aliyun), what="the Aliyun send")
    [send] = aliyun.sends
    assert send.phone == phone
    assert send.template_code == "SMS_100002"
    assert send.sign_name == ALIYUN_SIGN_NAME
    assert "王医生" in send.params["content"]
    # the send is recorded on the message in the transaction after the provider's answer
    [msg] = await api.wait_for_messages(
        1, patient_id=patient_id, channel="sms", sent_at={"$ne": None}
    )
    assert msg["status"] == "sent"
    assert msg["provider_message_id"] == send.biz_id

    report = [
        {
            "phone_number": phone,
            "send_time": "2026-11-24 10:00:00",
            "report_time": "2026-11-24 10:00:05",
            "success": True,
            "err_code": "DELIVERED",
            "err_msg": "用户接收成功",
            "sms_size": "1",
            "biz_id": send.biz_id,
            "out_id": send.out_id,
        },
    ]
    response = await api.client.post(
        "/v1/notifications/providers/aliyun/sms-receipts",
        params={"token": receipt_token(RECEIPT_SECRET)},
        json=report,
    )
    assert response.status_code == 200
    assert response.json()["outcomes"] == {"delivered": 1}
    delivered = await api.ctx.runtime.db[MESSAGES].find_one({"_id": msg["_id"]})
    assert delivered is not None
    assert delivered["status"] == "delivered"


async def test_permanent_sms_refusal_is_a_dead_letter_without_retries(
    real_api: tuple[NotificationsApi, AliyunSmsServer, WechatServer],
) -> None:
    api, aliyun, _ = real_api
    aliyun.fail_next(1, "isv.MOBILE_NUMBER_ILLEGAL")
    patient_id, account_id, _ = await api.register_patient()
    await api.publish(cancelled(facts(patient_id, account_id)))
    [msg] = await api.wait_for_messages(1, patient_id=patient_id, channel="sms", status="failed")
    assert msg["reason"] == "provider_refused"
    assert [a["code"] for a in msg["attempts"]] == ["isv.MOBILE_NUMBER_ILLEGAL"]
