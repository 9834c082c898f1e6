"""Preferences: PATCH merges, PUT replaces and answers with the full effective preferences,
quiet hours with start equal to end are refused, and staff give their reason one way."""

from __future__ import annotations

from urllib.parse import quote

from shared.audit import AUDIT_COLLECTION
from shared.principal import Role
from tests.integration.notifications.conftest import NotificationsApi, booked, facts

PREFS = "/v1/notifications/patients/{}/preferences"
ALL_ON = {"wechat": True, "sms": True, "voice": True}


async def test_patch_changes_only_what_it_names(notifications_api: NotificationsApi) -> None:
    api = notifications_api
    patient_id, account_id, _ = await api.register_patient()
    me, url = api.token(account_id), PREFS.format(patient_id)
    night = {"start": "22:00", "end": "07:00"}
    first = {"language": "en", "channels": {"wechat": False}, "quiet_hours": night}
    put = await api.client.put(url, json=first, headers=me)
    assert put.status_code == 200, put.text
    # the PUT answers with every push channel, not only the one it named
    assert put.json()["channels"] == {**ALL_ON, "wechat": False}

    sms_off = await api.client.patch(url, json={"channels": {"sms": False}}, headers=me)
    assert sms_off.status_code == 200, sms_off.text
    assert sms_off.headers["etag"] == '"2"'
    body = sms_off.json()
    assert body["channels"] == {"wechat": False, "sms": False, "voice": True}
    assert (body["language"], body["quiet_hours"]) == ("en", night)

    stale = await api.client.patch(
        url, json={"language": "zh-CN"}, headers={**me, "If-Match": '"1"'}
    )
    assert (stale.status_code, stale.json()["code"]) == (409, "version_mismatch")
    quiet_off = await api.client.patch(
        url, json={"quiet_hours": None, "language": "zh-CN"}, headers={**me, "If-Match": '"2"'}
    )
    assert quiet_off.status_code == 200, quiet_off.text
    assert quiet_off.json()["quiet_hours"] is None
    assert quiet_off.json()["channels"] == {"wechat": False, "sms": False, "voice": True}

    read = (await api.client.get(url, headers=me)).json()
    assert (read["version"], read["language"], read["quiet_hours"]) == (3, "zh-CN", None)
    assert read["channels"] == {"wechat": False, "sms": False, "voice": True}
    # a PUT still replaces everything: what it leaves out is back to on / off
    replaced = await api.client.put(url, json={"language": "en"}, headers=me)
    assert replaced.json()["channels"] == ALL_ON


async def test_patch_of_a_patient_with_no_preferences_starts_from_the_defaults(
    notifications_api: NotificationsApi,
) -> None:
    api = notifications_api
    patient_id, account_id, _ = await api.register_patient()
    url = PREFS.format(patient_id)
    patched = await api.client.patch(
        url, json={"channels": {"voice": False}}, headers=api.token(account_id)
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["channels"] == {**ALL_ON, "voice": False}
    assert patched.json()["version"] == 1


async def test_quiet_hours_with_start_equal_to_end_are_refused(
    notifications_api: NotificationsApi,
) -> None:
    api = notifications_api
    patient_id, account_id, _ = await api.register_patient()
    me, url = api.token(account_id), PREFS.format(patient_id)
    same = {"quiet_hours": {"start": "00:00", "end": "00:00"}}
    for send in (api.client.put, api.client.patch):
        refused = await send(url, json=same, headers=me)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "validation_error"
        assert [e["field"] for e in refused.json()["errors"]] == ["body.quiet_hours"]
    after = (await api.client.get(url, headers=me)).json()
    assert after["version"] == 0  # nothing changed


async def test_bad_patch_changes_nothing(notifications_api: NotificationsApi) -> None:
    api = notifications_api
    patient_id, account_id, _ = await api.register_patient()
    me, url = api.token(account_id), PREFS.format(patient_id)
    for body in ({"channels": {"inbox": False}}, {"language": "fr"}, {"channels": {"fax": 1}}):
        bad = await api.client.patch(url, json=body, headers=me)
        assert bad.status_code == 422, (body, bad.text)
    assert (await api.client.get(url, headers=me)).json()["version"] == 0
    assert (await api.client.patch(url, content=b"{", headers=me)).status_code == 422


async def treated_at_org(api: NotificationsApi) -> str:
    """A patient the staff's organization has sent a message (a booking there): its staff
    may reach the patient's preferences (shared/scoping.py)."""
    patient_id, account_id, _ = await api.register_patient()
    await api.publish(booked(facts(patient_id, account_id)))
    await api.wait_for_messages(1, patient_id=patient_id)
    return patient_id


async def test_staff_change_preferences_with_a_header_reason_audited(
    notifications_api: NotificationsApi,
) -> None:
    api = notifications_api
    patient_id = await treated_at_org(api)
    url, agent = PREFS.format(patient_id), api.token("agent-7", Role.AGENT)
    refused = await api.client.patch(url, json={"language": "en"}, headers=agent)
    assert (refused.status_code, refused.json()["code"]) == (400, "reason_required")
    header = {**agent, "X-Access-Reason": quote("患者来电要求改为英文")}
    patched = await api.client.patch(url, json={"language": "en"}, headers=header)
    assert patched.status_code == 200, patched.text
    audit = await api.ctx.runtime.db[AUDIT_COLLECTION].find({"patient_id": patient_id}).to_list()
    assert [(a["action"], a["reason"]) for a in audit] == [
        ("notification.preferences.update", "患者来电要求改为英文")
    ]


async def test_a_bad_reason_is_refused_and_changes_nothing(
    notifications_api: NotificationsApi,
) -> None:
    api = notifications_api
    patient_id = await treated_at_org(api)
    url, agent = PREFS.format(patient_id), api.token("agent-7", Role.AGENT)
    bad: list[dict[str, str | bytes]] = [
        {"X-Access-Reason": b"\xff\xfe\xfd"},  # raw bytes that are not UTF-8
        {"X-Access-Reason": "%E6%82"},  # percent-encoded UTF-8 cut short
        {"X-Access-Reason*": "GBK''%BB%BC"},  # RFC 8187 in another charset
        {"X-Access-Reason": quote("原" * 201)},  # too long once decoded
        {"X-Access-Reason": "x"},  # too short
    ]
    for extra in bad:
        refused = await api.client.patch(url, json={"language": "en"}, headers={**agent, **extra})
        assert refused.status_code == 422, (extra, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "reason_invalid"
    raw = {**agent, "X-Access-Reason": "患者来电".encode()}
    assert (await api.client.get(url, headers=raw)).json()["version"] == 0
    audit = await api.ctx.runtime.db[AUDIT_COLLECTION].find({"patient_id": patient_id}).to_list()
    assert [(a["action"], a["reason"]) for a in audit] == [
        ("notification.preferences.read", "患者来电")
    ]
