"""The patient hears about their referral: referral events on ``careloop.referrals`` become
the referral message kinds (accepted, not placed, completed, withdrawn), once each; a
rejection the router passed on to the next organization is not the patient's news."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.notifications.settings import NotificationsSettings
from services.notifications.store import DISPATCHES
from services.referrals.events import (
    BookingAsk,
    ReferralAccepted,
    ReferralCancelled,
    ReferralCompleted,
    ReferralRejected,
    ReferralRouted,
)
from shared.auth import TokenMinter
from shared.events import Envelope, EventPayload, make_event
from shared.ids import new_id
from shared.kafka import ensure_topics, topic_name
from tests.integration.notifications.conftest import NotificationsApi, running_notifications
from tests.support.kafka import publish_events, wait_until

KINDS = ("referral.accepted", "referral.rejected", "referral.completed", "referral.cancelled")


@pytest.fixture
async def api(
    notifications_settings: Callable[..., NotificationsSettings], minter: TokenMinter
) -> AsyncIterator[NotificationsApi]:
    settings = notifications_settings()  # quiet hours off
    await ensure_topics(
        settings.kafka_bootstrap,
        [topic_name(settings, "referrals")],
        partitions=settings.kafka_partitions,
    )
    async with running_notifications(settings, minter) as running:
        yield running


def facts(patient_id: str, *, status: str, business_status: str) -> dict[str, Any]:
    return {
        "referral_id": new_id(),
        "patient_id": patient_id,
        "direction": "upward",
        "urgency": "routine",
        "status": status,
        "business_status": business_status,
        "sending_org_id": "t1",
        "sending_doctor_id": "dr-town",
        "receiving_org_id": "h1",
        "receiving_department_id": "h1.CARD",
        "specialty": "cardiology",
        "diagnosis_code": "I10",
        "case_version": 3,
    }


def referral_event(payload: EventPayload) -> Envelope:
    data = payload.model_dump()
    return make_event(payload, source="referrals", subject=data["patient_id"])


def rejected(patient_id: str, *, rerouted: bool) -> Envelope:
    status = "requested" if rerouted else "rejected"
    business = "awaiting_triage" if rerouted else "rejected"
    return referral_event(
        ReferralRejected(
            **facts(patient_id, status=status, business_status=business),
            rejected_org_id="h1",
            reason_code="no_capacity",
            rerouted=rerouted,
        )
    )


async def test_each_referral_event_reaches_the_patient_once_per_channel(
    api: NotificationsApi,
) -> None:
    patient_id, _, phone = await api.register_patient()
    now = datetime.now(UTC)
    passed_on = rejected(patient_id, rerouted=True)
    routed = referral_event(
        ReferralRouted(
            **facts(patient_id, status="requested", business_status="awaiting_triage"),
            routed_by="router",
            acceptance_due_at=now + timedelta(hours=24),
        )
    )
    accepted = referral_event(
        ReferralAccepted(
            **facts(patient_id, status="accepted", business_status="awaiting_booking"),
            booking=BookingAsk(booking_request_id=new_id(), org_id="h1", department_id="h1.CARD"),
        )
    )
    not_placed = rejected(patient_id, rerouted=False)
    completed = referral_event(
        ReferralCompleted(
            **facts(patient_id, status="completed", business_status="summary_sent"),
            diagnosis="原发性高血压",
            treatment="药物调整",
            recommendations="低盐饮食",
            follow_up_advice="两周后到社区复查血压",
            completed_at=now,
        )
    )
    withdrawn = referral_event(
        ReferralCancelled(
            **facts(patient_id, status="cancelled", business_status="cancelled"),
            reason="patient recovered",
            appointment_id=new_id(),
        )
    )
    # one patient, one partition: the silent ones are handled before the last is told
    events = [passed_on, routed, accepted, not_placed, completed, withdrawn]
    await publish_events(api.settings, "referrals", events)
    await publish_events(api.settings, "referrals", [withdrawn])  # redelivered

    sms = await api.wait_for_sandbox(len(KINDS), patient_id=patient_id, channel="sms")
    assert sorted(s["kind"] for s in sms) == sorted(KINDS)
    assert all(s["address_masked"] == phone[:3] + "****" + phone[-4:] for s in sms)
    texts = {s["kind"]: s["body"] for s in sms}
    assert texts["referral.accepted"].startswith(
        "【CareLoop】您的转诊申请已被接收。正在为您预约就诊"
    )
    assert "暂无机构能接收" in texts["referral.rejected"]
    assert "随访建议：两周后到社区复查血压" in texts["referral.completed"]
    assert "不计爽约" in texts["referral.cancelled"]
    for body in texts.values():
        assert phone not in body
        assert "h1" not in body
        assert "I10" not in body

    messages = await api.messages(patient_id=patient_id)
    by_kind: dict[str, dict[str, str]] = {}
    for m in messages:
        assert m["kind"] not in by_kind or m["channel"] not in by_kind[m["kind"]]  # once
        by_kind.setdefault(m["kind"], {})[m["channel"]] = m["status"]
        assert m["source_id"] not in (passed_on.id, routed.id)
    # referral events name the patient only: the account that added the patient gets the
    # inbox item; WeChat is suppressed (that account has bound no openid here)
    expected = {"inbox": "delivered", "sms": "delivered", "wechat": "suppressed"}
    assert by_kind == {kind: expected for kind in KINDS}
    by_source = {m["source_id"]: m["kind"] for m in messages}
    assert by_source == {
        accepted.id: "referral.accepted",
        not_placed.id: "referral.rejected",
        completed.id: "referral.completed",
        withdrawn.id: "referral.cancelled",
    }
    dispatched = api.ctx.runtime.db[DISPATCHES]
    assert await dispatched.count_documents({"_id": {"$regex": f"^{passed_on.id}:"}}) == 0


async def test_a_rejection_passed_on_to_the_next_organization_sends_nothing(
    api: NotificationsApi,
) -> None:
    patient_id, _, _ = await api.register_patient()
    passed_on = rejected(patient_id, rerouted=True)
    await publish_events(api.settings, "referrals", [passed_on])
    # a later event of the same patient (same partition) shows the first was handled
    marker = rejected(patient_id, rerouted=False)
    await publish_events(api.settings, "referrals", [marker])
    await api.wait_for_sandbox(1, patient_id=patient_id, channel="sms")

    async def settled() -> bool:
        return bool(await api.messages(source_id=marker.id, status="delivered"))

    await wait_until(settled, timeout=30, what="the marker's SMS recorded")
    assert await api.messages(source_id=passed_on.id) == []
    assert {m["source_id"] for m in await api.messages(patient_id=patient_id)} == {marker.id}


async def test_the_account_that_added_the_patient_finds_the_referral_in_its_inbox(
    api: NotificationsApi,
) -> None:
    patient_id, account_id, _ = await api.register_patient()
    marker = rejected(patient_id, rerouted=False)
    await publish_events(api.settings, "referrals", [marker])
    await api.wait_for_sandbox(1, patient_id=patient_id, channel="sms")
    inbox = await api.messages(source_id=marker.id, channel="inbox")
    assert [(m["account_id"], m["status"]) for m in inbox] == [(account_id, "delivered")]
