"""Per-patient rate limits, and a stored template that fails at send time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.principal import Role
from tests.integration.notifications.conftest import (
    booked,
    facts,
    rescheduled,
    running_notifications,
    waitlist_offered,
)
from tests.support.kafka import wait_until


async def test_rate_limit_holds_normal_messages_until_it_allows_but_not_urgent_ones(
    notifications_settings: Any, minter: Any
) -> None:
    settings = notifications_settings(patient_rate_limit_per_hour=1)
    async with running_notifications(settings, minter) as api:
        patient_id, account_id, _ = await api.register_patient()
        first = facts(patient_id, account_id)
        await api.publish(booked(first))
        await api.wait_for_sandbox(1, patient_id=patient_id, kind="appointment.booked")
        await api.publish(rescheduled(first, facts(patient_id, account_id)))
        await api.publish(
            waitlist_offered(patient_id, account_id, expires_in=timedelta(minutes=15))
        )
        await api.wait_for_sandbox(1, patient_id=patient_id, kind="appointment.waitlist_offered")

        async def held() -> bool:
            msgs = await api.messages(
                patient_id=patient_id, kind="appointment.rescheduled", channel="sms"
            )
            return bool(msgs) and msgs[0]["reason"] == "rate_limited"

        await wait_until(held, what="the reschedule notice held by the rate limit")
        [msg] = await api.messages(
            patient_id=patient_id, kind="appointment.rescheduled", channel="sms"
        )
        assert msg["status"] == "queued"
        # one per hour (GCRA): the next SMS may go an hour after the first one went
        [first] = await api.messages(
            patient_id=patient_id, kind="appointment.booked", channel="sms"
        )
        due_at = msg["due_at"].replace(tzinfo=UTC)
        sent_at = first["sent_at"].replace(tzinfo=UTC)
        assert sent_at + timedelta(hours=1) - timedelta(seconds=1) <= due_at
        assert due_at <= datetime.now(UTC) + timedelta(hours=1, seconds=1)
        assert await api.sandbox(patient_id=patient_id, kind="appointment.rescheduled") == []


async def test_a_stored_template_failing_at_send_time_falls_back_to_the_builtin_one(
    notifications_settings: Any, minter: Any
) -> None:
    async with running_notifications(notifications_settings(), minter) as api:
        admin = api.token("admin-1", Role.ADMIN)
        published = await api.client.post(
            "/v1/notifications/templates/appointment.booked/versions",
            json={
                "templates": {"zh-CN": {"sms": {"body": "【CareLoop】{{ preparation.upper() }}"}}},
                "note": "renders with the sample, not without a preparation",
            },
            headers=admin,
        )
        assert published.status_code == 201, published.text
        patient_id, account_id, _ = await api.register_patient()
        await api.publish(booked(facts(patient_id, account_id, preparation=None)))
        [sms] = await api.wait_for_sandbox(1, patient_id=patient_id, channel="sms")
        assert sms["body"].startswith("【CareLoop】您已预约心内科王医生")
        [msg] = await api.messages(patient_id=patient_id, channel="sms")
        assert msg["template_version"] == 0
        metrics = (await api.client.get("/metrics")).text
        assert (
            'careloop_template_render_failures_total{channel="sms",kind="appointment.booked"} 1.0'
            in metrics
        )
