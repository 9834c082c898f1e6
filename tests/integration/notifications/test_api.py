"""The notifications API: preferences, templates, login codes, message logs, bad input."""

from __future__ import annotations

from typing import Any

from shared.audit import AUDIT_COLLECTION
from shared.principal import Role
from tests.factories import make_phone
from tests.integration.notifications.conftest import NotificationsApi, booked, facts

PREFS = "/v1/notifications/patients/{}/preferences"


async def test_preferences_roundtrip_with_etag_and_ownership(
    notifications_api: NotificationsApi,
) -> None:
    api = notifications_api
    patient_id, account_id, _ = await api.register_patient()
    me = api.token(account_id)
    first = await api.client.get(PREFS.format(patient_id), headers=me)
    assert first.status_code == 200
    assert first.headers["etag"] == '"0"'
    assert first.json()["language"] == "zh-CN"

    body = {"language": "en", "channels": {"wechat": False}, "quiet_hours": None}
    updated = await api.client.put(
        PREFS.format(patient_id), json=body, headers={**me, "If-Match": '"0"'}
    )
    assert updated.status_code == 200, updated.text
    assert updated.headers["etag"] == '"1"'
    assert updated.json()["quiet_hours"] is None
    stale = await api.client.put(
        PREFS.format(patient_id), json=body, headers={**me, "If-Match": '"0"'}
    )
    assert stale.status_code == 409
    assert stale.json()["code"] == "version_mismatch"

    stranger = await api.client.get(PREFS.format(patient_id), headers=api.token("stranger"))
    assert stranger.status_code == 403
    bad = await api.client.put(
        PREFS.format(patient_id),
        json={"language": "fr", "channels": {"inbox": False}, "quiet_hours": {"start": "25:00"}},
        headers=me,
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    fields = {e["field"] for e in bad.json()["errors"]}
    assert {"body.language", "body.channels", "body.quiet_hours.start"} <= fields
    after = await api.client.get(PREFS.format(patient_id), headers=me)
    assert after.json()["language"] == "en"
    assert after.json()["version"] == 1


async def test_staff_reads_a_patients_message_log_masked_and_audited(
    notifications_api: NotificationsApi,
) -> None:
    api = notifications_api
    patient_id, account_id, phone = await api.register_patient()
    await api.publish(booked(facts(patient_id, account_id)))
    await api.wait_for_sandbox(1, patient_id=patient_id, channel="sms")
    url = f"/v1/notifications/patients/{patient_id}/messages"
    agent = api.token("agent-7", Role.AGENT)

    no_reason = await api.client.get(url, headers=agent)
    assert no_reason.status_code == 400
    assert no_reason.json()["code"] == "reason_required"
    response = await api.client.get(url, params={"reason": "patient called 96165"}, headers=agent)
    assert response.status_code == 200
    log = response.json()
    assert {m["channel"] for m in log} == {"inbox", "wechat", "sms"}
    sms = next(m for m in log if m["channel"] == "sms")
    assert sms["address_masked"] == f"{phone[:3]}****{phone[-4:]}"
    assert phone not in response.text
    audit = await api.ctx.runtime.db[AUDIT_COLLECTION].find({"patient_id": patient_id}).to_list()
    assert [(a["actor_id"], a["action"]) for a in audit] == [
        ("agent-7", "notification.messages.read")
    ]
    own = await api.client.get(url, headers=api.token(account_id))
    assert own.status_code == 200
    assert len(own.json()) == 3
    assert (await api.client.get(url, headers=api.token("stranger"))).status_code == 403


async def test_login_code_goes_by_sms_at_once_and_is_not_kept(
    notifications_api: NotificationsApi,
) -> None:
    api = notifications_api
    phone = make_phone()
    body = {"phone": phone, "code": "482913", "minutes": 5, "request_id": "login-1"}
    refused = await api.client.post(
        "/v1/notifications/login-codes", json=body, headers=api.token("p1")
    )
    assert refused.status_code == 403
    response = await api.client.post(
        "/v1/notifications/login-codes", json=body, headers=api.service
    )
    assert response.status_code == 202, response.text
    sms = await api.wait_for_sandbox(1, kind="auth.login_code")
    assert "482913" in sms[0]["body"]
    assert sms[0]["address_masked"] == f"{phone[:3]}****{phone[-4:]}"
    again = await api.client.post("/v1/notifications/login-codes", json=body, headers=api.service)
    assert again.json()["message_ids"] == []  # one SMS per request id
    [msg] = await api.messages(kind="auth.login_code")
    assert msg["context"] == {}
    assert msg["status"] == "delivered"
    assert phone not in str(msg)  # the phone is kept encrypted only
    bad = await api.client.post(
        "/v1/notifications/login-codes", json={**body, "phone": "12345"}, headers=api.service
    )
    assert bad.status_code == 422


async def test_templates_preview_publish_and_rollback(notifications_api: NotificationsApi) -> None:
    api = notifications_api
    admin = api.token("admin-1", Role.ADMIN)
    agent = api.token("agent-1", Role.AGENT)
    kinds = (await api.client.get("/v1/notifications/templates", headers=agent)).json()
    assert "appointment.booked" in {k["kind"] for k in kinds}

    preview = await api.client.post(
        "/v1/notifications/templates/appointment.booked/preview",
        json={"language": "en", "channel": "sms"},
        headers=agent,
    )
    assert preview.status_code == 403  # previews are for admins
    preview = await api.client.post(
        "/v1/notifications/templates/appointment.booked/preview",
        json={"language": "en", "channel": "sms"},
        headers=admin,
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["body"].startswith("[CareLoop]")

    draft: dict[str, Any] = {
        "body": "【CareLoop】{{ resource_name }} {{ starts_at | local_time(tz) }}"
    }
    new = await api.client.post(
        "/v1/notifications/templates/appointment.booked/versions",
        json={"templates": {"zh-CN": {"sms": draft}}, "note": "shorter"},
        headers=admin,
    )
    assert new.status_code == 201, new.text
    assert new.json()["version"] == 1
    forbidden = await api.client.post(
        "/v1/notifications/templates/appointment.booked/versions",
        json={"templates": {"zh-CN": {"sms": draft}}, "note": "agent"},
        headers=agent,
    )
    assert forbidden.status_code == 403

    broken = await api.client.post(
        "/v1/notifications/templates/appointment.booked/versions",
        json={"templates": {"zh-CN": {"sms": {"body": "{{ no_such_field }}"}}}, "note": "bad"},
        headers=admin,
    )
    assert broken.status_code == 422
    assert broken.json()["code"] == "template_render_error"
    unsafe = await api.client.post(
        "/v1/notifications/templates/appointment.booked/preview",
        json={"channel": "sms", "draft": {"body": "{{ ''.__class__.__mro__ }}"}},
        headers=admin,
    )
    assert unsafe.status_code == 422
    unknown = await api.client.post(
        "/v1/notifications/templates/nope/preview", json={"channel": "sms"}, headers=admin
    )
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "template_not_found"
    wrong_channel = await api.client.post(
        "/v1/notifications/templates/appointment.booked/preview",
        json={"channel": "fax"},
        headers=admin,
    )
    assert wrong_channel.status_code == 422

    patient_id, account_id, _ = await api.register_patient()
    await api.publish(booked(facts(patient_id, account_id)))
    [sms] = await api.wait_for_sandbox(1, patient_id=patient_id, channel="sms")
    assert sms["body"].startswith("【CareLoop】王医生 ")  # the published version
    [msg] = await api.messages(patient_id=patient_id, channel="sms")
    assert msg["template_version"] == 1

    rollback = await api.client.put(
        "/v1/notifications/templates/appointment.booked/active", json={"version": 0}, headers=admin
    )
    assert rollback.status_code == 200
    detail = await api.client.get("/v1/notifications/templates/appointment.booked", headers=agent)
    assert detail.json()["active_version"] == 0
    assert [v["version"] for v in detail.json()["versions"]] == [1]


async def test_provider_callbacks_refuse_bad_credentials_and_count_unknown_receipts(
    notifications_settings: Any, minter: Any
) -> None:
    from services.notifications.providers.aliyun_sms import receipt_token
    from tests.integration.notifications.conftest import running_notifications

    settings = notifications_settings(aliyun_receipt_secret="s3cret", wechat_callback_token="tok")
    async with running_notifications(settings, minter) as api:
        url = "/v1/notifications/providers/aliyun/sms-receipts"
        token = receipt_token("s3cret")
        report = [{"biz_id": "unknown-biz", "success": True, "err_code": "DELIVERED"}]
        assert (await api.client.post(url, json=report)).status_code == 401
        assert (await api.client.post(f"{url}?token=wrong", json=report)).status_code == 401
        assert (await api.client.post(f"{url}?token=s3cret", json=report)).status_code == 401
        ok = await api.client.post(f"{url}?token={token}", json=report)
        assert ok.status_code == 200
        assert ok.json()["outcomes"] == {"unknown": 1}
        not_json = await api.client.post(f"{url}?token={token}", content=b"{oops")
        assert not_json.status_code == 400

        wx = "/v1/notifications/providers/wechat/events"
        bad_sig = await api.client.get(
            wx, params={"signature": "x", "timestamp": "1", "nonce": "2", "echostr": "e"}
        )
        assert bad_sig.status_code == 401
        metrics = (await api.client.get("/metrics")).text
        assert (
            'careloop_notification_receipts_total{outcome="unknown",provider="aliyun"} 1.0'
            in metrics
        )


async def test_staff_retry_requeues_only_a_failed_message_and_audits_it(
    notifications_api: NotificationsApi,
) -> None:
    from services.notifications.store import MESSAGES

    api = notifications_api
    patient_id, account_id, _ = await api.register_patient()
    await api.publish(booked(facts(patient_id, account_id)))
    sms = (await api.wait_for_sandbox(1, patient_id=patient_id, channel="sms"))[0]
    admin = api.token("ops-1", Role.ADMIN)
    url = f"/v1/notifications/admin/messages/{sms['message_id']}/retry"

    why = {"reason": "check the gateway"}
    missing = await api.client.post(
        "/v1/notifications/admin/messages/nope/retry", params=why, headers=admin
    )
    assert (missing.status_code, missing.json()["code"]) == (404, "message_not_found")
    refused = await api.client.post(url, params=why, headers=admin)
    assert (refused.status_code, refused.json()["code"]) == (409, "message_not_failed")

    db = api.ctx.runtime.db
    await db[MESSAGES].update_one({"_id": sms["message_id"]}, {"$set": {"status": "failed"}})
    retried = await api.client.post(url, params={"reason": "gateway back"}, headers=admin)
    assert retried.status_code == 200, retried.text
    assert retried.json() == {"message_id": sms["message_id"], "status": "queued"}
    audits = await db[AUDIT_COLLECTION].find({"action": "notification.message.retry"}).to_list()
    assert [(a["resource"], a["reason"]) for a in audits] == [
        (f"message:{sms['message_id']}", "gateway back")
    ]


async def test_a_hotline_agent_resends_a_failed_message_of_the_caller_with_a_reason(
    notifications_api: NotificationsApi,
) -> None:
    """The console's message log: an agent of the message's organization sends a failed
    message again for the patient on the phone, giving a reason (audited)."""
    from services.notifications.store import MESSAGES

    api = notifications_api
    patient_id, account_id, _ = await api.register_patient()
    await api.publish(booked(facts(patient_id, account_id)))
    sms = (await api.wait_for_sandbox(1, patient_id=patient_id, channel="sms"))[0]
    db = api.ctx.runtime.db
    await db[MESSAGES].update_one({"_id": sms["message_id"]}, {"$set": {"status": "failed"}})
    agent = api.token("agent-7", Role.AGENT)
    url = f"/v1/notifications/admin/messages/{sms['message_id']}/retry"

    unexplained = await api.client.post(url, headers=agent)
    assert (unexplained.status_code, unexplained.json()["code"]) == (400, "reason_required")
    nurse = api.token("nurse-7", Role.NURSE)
    assert (await api.client.post(url, params={"reason": "来电"}, headers=nurse)).status_code == 403
    retried = await api.client.post(url, params={"reason": "患者来电未收到短信"}, headers=agent)
    assert retried.json() == {"message_id": sms["message_id"], "status": "queued"}
    audits = await db[AUDIT_COLLECTION].find({"action": "notification.message.retry"}).to_list()
    assert [(a["actor_id"], a["reason"]) for a in audits] == [("agent-7", "患者来电未收到短信")]
