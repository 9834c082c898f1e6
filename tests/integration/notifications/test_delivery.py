"""Channels, consent, fallback, quiet hours, retries and dead letters, receipts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.notifications.domain.channels import Channel
from services.notifications.providers.sandbox import SandboxProvider
from shared.dead_letters import DEAD_LETTERS
from shared.jobs import JOBS
from shared.principal import Role
from tests.integration.notifications.conftest import (
    NotificationsApi,
    booked,
    cancelled,
    facts,
    running_notifications,
    waitlist_offered,
)
from tests.support.kafka import read_topic, wait_until


async def bind_wechat(api: NotificationsApi, account_id: str, consents: int = 0) -> None:
    headers = api.token(account_id)
    response = await api.client.put(  # as the gateway does after WeChat's code2session
        f"/v1/notifications/accounts/{account_id}/wechat",
        json={"openid": f"oWx{account_id[-12:]}"},
        headers=api.service,
    )
    assert response.status_code == 200, response.text
    for _ in range(consents):
        response = await api.client.post(
            "/v1/notifications/me/wechat/consents",
            json={"results": {"appointment.booked": "accept"}},
            headers=headers,
        )
        assert response.status_code == 200, response.text


async def test_wechat_with_consent_spends_it_and_skips_sms(
    notifications_api: NotificationsApi,
) -> None:
    api = notifications_api
    patient_id, account_id, _ = await api.register_patient()
    await bind_wechat(api, account_id, consents=1)
    await api.publish(booked(facts(patient_id, account_id)))

    wechat = await api.wait_for_sandbox(1, patient_id=patient_id, channel="wechat")
    assert wechat[0]["fields"]["thing1"] == "心内科 王医生"
    assert wechat[0]["page"].startswith("pages/appointments/detail?id=")
    msgs = await api.messages(patient_id=patient_id)
    assert {m["channel"]: m["status"] for m in msgs} == {
        "inbox": "delivered",
        "wechat": "delivered",
    }
    assert await api.sandbox(patient_id=patient_id, channel="sms") == []
    consents = await api.client.get(
        "/v1/notifications/me/wechat/consents", headers=api.token(account_id)
    )
    body = consents.json()
    assert body["balances"] == {"appointment.booked": 0}
    assert [e["reason"] for e in body["history"]] == ["used", "granted"]


async def test_wechat_without_consent_falls_back_to_sms(
    notifications_api: NotificationsApi,
) -> None:
    api = notifications_api
    patient_id, account_id, _ = await api.register_patient()
    await bind_wechat(api, account_id, consents=0)
    await api.publish(booked(facts(patient_id, account_id)))

    await api.wait_for_sandbox(1, patient_id=patient_id, channel="sms")
    wechat = await api.messages(patient_id=patient_id, channel="wechat")
    assert wechat[0]["status"] == "suppressed"
    assert wechat[0]["reason"] == "no_consent"
    assert await api.sandbox(patient_id=patient_id, channel="wechat") == []


async def test_channel_turned_off_is_skipped_but_mandatory_clinic_cancellation_is_not(
    notifications_api: NotificationsApi,
) -> None:
    api = notifications_api
    patient_id, account_id, _ = await api.register_patient()
    response = await api.client.put(
        f"/v1/notifications/patients/{patient_id}/preferences",
        json={"language": "en", "channels": {"sms": False, "voice": False}},
        headers=api.token(account_id),
    )
    assert response.status_code == 200, response.text
    f = facts(patient_id, account_id)
    await api.publish(cancelled(f, by="patient"))
    await api.wait_for_messages(3, patient_id=patient_id, kind="appointment.cancelled")
    normal = {
        m["channel"]: m
        for m in await api.messages(patient_id=patient_id, kind="appointment.cancelled")
    }
    assert normal["sms"]["status"] == "suppressed"
    assert normal["sms"]["reason"] == "channel_off"

    clinic = facts(patient_id, account_id)
    await api.publish(cancelled(clinic, by="hospital", rebooking_offer_id="offer-1"))
    sms = await api.wait_for_sandbox(
        1, patient_id=patient_id, channel="sms", kind="appointment.clinic_cancelled"
    )
    assert sms[0]["language"] == "en"
    assert "[CareLoop]" in sms[0]["body"]


async def test_quiet_hours_hold_normal_messages_and_pass_urgent_ones(
    notifications_settings: Any, minter: Any
) -> None:
    now_local = datetime.now(ZoneInfo("Asia/Shanghai"))
    start = (now_local - timedelta(hours=1)).strftime("%H:%M")
    end = (now_local + timedelta(hours=2)).strftime("%H:%M")
    settings = notifications_settings(quiet_hours_start=start, quiet_hours_end=end)
    async with running_notifications(settings, minter) as api:
        patient_id, account_id, _ = await api.register_patient()
        await api.publish(booked(facts(patient_id, account_id)))
        await api.publish(
            waitlist_offered(patient_id, account_id, expires_in=timedelta(minutes=15))
        )

        urgent = await api.wait_for_sandbox(
            1, patient_id=patient_id, kind="appointment.waitlist_offered"
        )
        assert urgent[0]["channel"] == "sms"
        held = await api.wait_for_messages(
            1, patient_id=patient_id, kind="appointment.booked", channel="sms"
        )
        assert held[0]["status"] == "queued"
        assert held[0]["due_at"].replace(tzinfo=UTC) > datetime.now(UTC) + timedelta(minutes=100)
        inbox = await api.messages(
            patient_id=patient_id, kind="appointment.booked", channel="inbox"
        )
        assert inbox[0]["status"] == "delivered"  # the inbox is silent: it is not held
        assert await api.sandbox(patient_id=patient_id, kind="appointment.booked") == []


async def test_provider_failure_retries_then_dead_letter_then_next_channel(
    notifications_api: NotificationsApi,
) -> None:
    api = notifications_api
    sms = api.ctx.providers[Channel.SMS]
    assert isinstance(sms, SandboxProvider)
    sms.failing = True
    patient_id, account_id, _ = await api.register_patient()
    f = facts(patient_id, account_id)
    await api.publish(cancelled(f, by="hospital", rebooking_offer_id="offer-1"))  # sms → voice

    voice = await api.wait_for_sandbox(1, patient_id=patient_id, channel="voice")
    assert "王医生" in voice[0]["body"]
    failed = (await api.messages(patient_id=patient_id, channel="sms"))[0]
    assert failed["status"] == "failed"
    assert failed["reason"] == "retries_exhausted"
    assert len(failed["attempts"]) == api.settings.delivery_max_attempts
    dead = await api.ctx.runtime.db[DEAD_LETTERS].find({"event_id": failed["_id"]}).to_list()
    assert len(dead) == 1
    assert dead[0]["consumer"] == "notifications.delivery"
    dlq = f"{api.settings.own_topic}.redeliver.dlq.notifications.delivery"
    records = await read_topic(api.settings.kafka_bootstrap, dlq, expected=1)
    assert len(records) == 1

    # an operator replays the dead letter once the provider is back: the SMS goes out
    sms.failing = False
    response = await api.client.post(
        f"/v1/notifications/ops/dead-letters/{dead[0]['_id']}/replay",
        headers=api.token("ops", Role.ADMIN),
    )
    assert response.status_code in (200, 202), response.text
    resent = await api.wait_for_sandbox(1, patient_id=patient_id, channel="sms")
    assert resent[0]["message_id"] == failed["_id"]


async def test_redelivered_event_makes_one_message_per_channel(
    notifications_api: NotificationsApi,
) -> None:
    api = notifications_api
    patient_id, account_id, _ = await api.register_patient()
    event = booked(facts(patient_id, account_id))
    for _ in range(3):
        await api.publish(event)
    await api.wait_for_sandbox(1, patient_id=patient_id, channel="sms")
    consumed = api.ctx.runtime.metrics.events_consumed
    duplicates = consumed.labels("notifications.events", event.type, "duplicate")

    async def both_duplicates_dropped() -> bool:
        return duplicates._value.get() >= 2

    await wait_until(both_duplicates_dropped, what="the two redeliveries dropped")
    msgs = await api.messages(patient_id=patient_id)
    assert sorted(m["channel"] for m in msgs) == ["inbox", "sms", "wechat"]
    assert len(await api.sandbox(patient_id=patient_id)) == 1


async def test_undelivered_receipt_fails_the_message_and_falls_back(
    notifications_settings: Any, minter: Any
) -> None:
    settings = notifications_settings(sandbox_auto_deliver=False)
    async with running_notifications(settings, minter) as api:
        patient_id, account_id, _ = await api.register_patient()
        await api.publish(cancelled(facts(patient_id, account_id), by="hospital"))
        sms = await api.wait_for_sandbox(1, patient_id=patient_id, channel="sms")
        admin = api.token("ops", Role.ADMIN)
        unknown = await api.client.post(
            "/v1/notifications/sandbox/receipts",
            json={"provider_message_id": "nope", "delivered": True},
            headers=admin,
        )
        assert unknown.status_code == 404
        assert unknown.json()["code"] == "message_not_found"
        response = await api.client.post(
            "/v1/notifications/sandbox/receipts",
            json={
                "provider_message_id": sms[0]["_id"],
                "delivered": False,
                "error_code": "DELIVRD_FAIL",
            },
            headers=admin,
        )
        assert response.json() == {"outcome": "failed"}
        await api.wait_for_sandbox(1, patient_id=patient_id, channel="voice")
        msg = (await api.messages(patient_id=patient_id, channel="sms"))[0]
        assert msg["status"] == "failed"
        assert msg["reason"] == "undelivered: DELIVRD_FAIL"
        again = await api.client.post(
            "/v1/notifications/sandbox/receipts",
            json={"provider_message_id": sms[0]["_id"], "delivered": True},
            headers=admin,
        )
        assert again.json() == {"outcome": "duplicate"}


async def test_jobs_collection_holds_one_delivery_job_per_message(
    notifications_api: NotificationsApi,
) -> None:
    api = notifications_api
    patient_id, account_id, _ = await api.register_patient()
    await api.publish(booked(facts(patient_id, account_id)))
    sms = (await api.wait_for_messages(1, patient_id=patient_id, channel="sms"))[0]
    jobs = await api.ctx.runtime.db[JOBS].find({"payload.message_id": sms["_id"]}).to_list()
    assert len(jobs) == 1
