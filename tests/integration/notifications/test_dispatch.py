"""Each appointment event becomes the right messages on the right channels, once."""

from __future__ import annotations

from datetime import timedelta

from services.notifications.store import INBOX
from tests.integration.notifications.conftest import (
    NotificationsApi,
    booked,
    cancelled,
    facts,
)
from tests.support.kafka import read_topic


async def test_booking_reaches_inbox_and_sms_when_wechat_is_not_bound(
    notifications_api: NotificationsApi,
) -> None:
    api = notifications_api
    patient_id, account_id, phone = await api.register_patient()
    f = facts(patient_id, account_id, preparation="检查前禁食 4 小时")
    await api.publish(booked(f))

    sms = await api.wait_for_sandbox(1, patient_id=patient_id, channel="sms")
    assert "王医生" in sms[0]["body"]
    assert "禁食" in sms[0]["body"]
    assert sms[0]["address_masked"] == phone[:3] + "****" + phone[-4:]
    msgs = await api.messages(patient_id=patient_id, kind="appointment.booked")
    by_channel = {m["channel"]: m for m in msgs}
    assert by_channel["inbox"]["status"] == "delivered"
    assert by_channel["wechat"]["status"] == "suppressed"
    assert by_channel["wechat"]["reason"] == "no_address"
    assert by_channel["sms"]["status"] == "delivered"
    items = await api.ctx.runtime.db[INBOX].find({"account_id": account_id}).to_list()
    assert len(items) == 1
    assert items[0]["title"] == "预约成功"

    sent = await read_topic(
        api.settings.kafka_bootstrap, api.settings.own_topic, expected=2, timeout=20
    )
    types = sorted(r.headers[0][1].decode() for r in sent)
    assert types == ["careloop.notification.delivered", "careloop.notification.sent"]


async def test_cancellation_by_patient(notifications_api: NotificationsApi) -> None:
    api = notifications_api
    patient_id, account_id, _ = await api.register_patient()
    f = facts(patient_id, account_id, starts_in=timedelta(hours=30))
    await api.publish(cancelled(f))
    sms = await api.wait_for_sandbox(1, patient_id=patient_id, channel="sms")
    assert sms[0]["kind"] == "appointment.cancelled"


async def test_no_show_and_check_in_notices(notifications_api: NotificationsApi) -> None:
    from services.appointments.events import AppointmentCheckedIn, AppointmentNoShow
    from tests.integration.notifications.conftest import event

    api = notifications_api
    patient_id, account_id, _ = await api.register_patient()
    f = facts(patient_id, account_id)
    await api.publish(event(AppointmentCheckedIn(**f, queue_number=15), patient_id))
    await api.publish(event(AppointmentNoShow(**f, no_shows_in_window=2), patient_id))
    await api.wait_for_sandbox(1, patient_id=patient_id, kind="appointment.no_show")
    checked_in = await api.messages(patient_id=patient_id, kind="appointment.checked_in")
    assert [(m["channel"], m["status"]) for m in checked_in] == [("inbox", "delivered")]
    items = await api.ctx.runtime.db[INBOX].find({"account_id": account_id}).to_list()
    assert any("15" in i["body"] for i in items if i["kind"] == "appointment.checked_in")
