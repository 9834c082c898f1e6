"""When a message's channel plan is used up: a warning only when channels failed.

Channels suppressed by the patient's preferences or by a missing WeChat consent are not a
failure: they are logged at info (``notification.no_channel_delivered``) with the reasons.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import structlog

from services.notifications.domain.channels import Channel
from services.notifications.providers.sandbox import SandboxProvider
from tests.integration.notifications.conftest import (
    NotificationsApi,
    booked,
    cancelled,
    facts,
)
from tests.integration.notifications.test_delivery import bind_wechat
from tests.support.kafka import wait_until

EXHAUSTED = {"notification.all_channels_failed", "notification.no_channel_delivered"}


def exhausted(logs: list[MutableMapping[str, Any]], kind: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] in EXHAUSTED and e.get("kind") == kind]


async def test_suppressed_channels_are_no_failure(notifications_api: NotificationsApi) -> None:
    api = notifications_api
    patient_id, account_id, phone = await api.register_patient()
    await bind_wechat(api, account_id, consents=0)  # WeChat: suppressed at send (no consent)
    off = await api.client.patch(
        f"/v1/notifications/patients/{patient_id}/preferences",
        json={"channels": {"sms": False}},  # SMS: suppressed at dispatch (channel_off)
        headers=api.token(account_id),
    )
    assert off.status_code == 200, off.text

    with structlog.testing.capture_logs() as logs:
        await api.publish(booked(facts(patient_id, account_id)))

        async def logged() -> bool:
            return bool(exhausted(logs, "appointment.booked"))

        await wait_until(logged, timeout=30, what="the used-up plan logged")

    (entry,) = exhausted(logs, "appointment.booked")
    assert entry["event"] == "notification.no_channel_delivered"
    assert entry["log_level"] == "info"
    assert entry["reasons"] == {"wechat": "no_consent", "sms": "channel_off"}
    assert phone not in repr(logs)


async def test_all_channels_failed_is_a_warning(notifications_api: NotificationsApi) -> None:
    api = notifications_api
    for channel in (Channel.SMS, Channel.VOICE):
        provider = api.ctx.providers[channel]
        assert isinstance(provider, SandboxProvider)
        provider.failing = True
    patient_id, account_id, phone = await api.register_patient()

    with structlog.testing.capture_logs() as logs:
        # a clinic cancellation goes by SMS, then voice: both fail
        await api.publish(cancelled(facts(patient_id, account_id), by="hospital"))

        async def logged() -> bool:
            return bool(exhausted(logs, "appointment.clinic_cancelled"))

        await wait_until(logged, timeout=60, what="the used-up plan logged")

    (entry,) = exhausted(logs, "appointment.clinic_cancelled")
    assert entry["event"] == "notification.all_channels_failed"
    assert entry["log_level"] == "warning"
    assert entry["failed"] == ["sms", "voice"]
    assert entry["reasons"]["sms"] == "retries_exhausted"
    assert phone not in repr(logs)
