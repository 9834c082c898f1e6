"""The patient's referral messages: which referral events become one (``when``), and how
they read when the optional facts are there or not."""

from __future__ import annotations

from typing import Any

import pytest

from services.notifications.domain.channels import Channel
from services.notifications.message_kinds import MessageKinds
from services.notifications.rendering import render
from services.notifications.templates import sample_context

MESSAGE_KINDS = MessageKinds.load()


def sample(kind: str) -> dict[str, Any]:
    return dict(MESSAGE_KINDS.kinds[kind].sample)


def test_the_patient_hears_of_acceptance_rejection_completion_and_withdrawal_only() -> None:
    referral_events = {e for e in MESSAGE_KINDS.event_types() if e.startswith("careloop.referral.")}
    assert referral_events == {
        "careloop.referral.accepted",
        "careloop.referral.rejected",
        "careloop.referral.completed",
        "careloop.referral.cancelled",
    }  # routed: a re-route is routed by "router" too, and the payload cannot tell the first


@pytest.mark.parametrize(("rerouted", "told"), [(False, True), (True, False)])
def test_a_rejection_is_told_only_when_no_organization_is_left(rerouted: bool, told: bool) -> None:
    data = {**sample("referral.rejected"), "rerouted": rerouted}
    kind = MESSAGE_KINDS.for_event("careloop.referral.rejected", data)
    assert (kind.kind if kind else None) == ("referral.rejected" if told else None)


def test_a_rejection_without_the_rerouted_flag_is_not_told() -> None:
    data = sample("referral.rejected")
    del data["rerouted"]
    assert MESSAGE_KINDS.for_event("careloop.referral.rejected", data) is None


@pytest.mark.parametrize(
    ("business_status", "told"), [("cancelled", True), ("entered_in_error", False)]
)
def test_a_withdrawal_is_told_but_a_record_entered_in_error_is_not(
    business_status: str, told: bool
) -> None:
    data = {**sample("referral.cancelled"), "business_status": business_status}
    kind = MESSAGE_KINDS.for_event("careloop.referral.cancelled", data)
    assert (kind is not None) == told


def test_every_acceptance_and_completion_is_told() -> None:
    for event, kind in [("accepted", "referral.accepted"), ("completed", "referral.completed")]:
        found = MESSAGE_KINDS.for_event(f"careloop.referral.{event}", sample(kind))
        assert found is not None
        assert found.kind == kind


def context(kind: str, language: str, **changes: Any) -> dict[str, Any]:
    return {**sample_context(MESSAGE_KINDS.kinds[kind], language), **changes}


def test_a_downward_acceptance_promises_follow_up_not_a_booking() -> None:
    kind = MESSAGE_KINDS.kinds["referral.accepted"]
    booked = render(kind.builtin("zh-CN", Channel.SMS), context(kind.kind, "zh-CN"))
    downward = render(
        kind.builtin("zh-CN", Channel.SMS),
        context(kind.kind, "zh-CN", booking=None, direction="downward"),
    )
    assert "预约就诊" in booked.body
    assert "随访" in downward.body
    assert "预约" not in downward.body
    en = render(kind.builtin("en", Channel.INBOX), context(kind.kind, "en", booking=None))
    assert "follow-up care" in en.body


def test_the_completion_carries_the_follow_up_advice_short_in_a_text() -> None:
    kind = MESSAGE_KINDS.kinds["referral.completed"]
    advice = "每日监测血压并记录，" * 20
    inbox = render(kind.builtin("zh-CN", Channel.INBOX), context(kind.kind, "zh-CN"))
    assert "随访建议：两周后到社区复查血压" in inbox.body
    sms = render(
        kind.builtin("zh-CN", Channel.SMS), context(kind.kind, "zh-CN", follow_up_advice=advice)
    )
    assert sms.body.endswith("…")
    assert len(sms.body) < 100
    wechat = render(
        kind.builtin("en", Channel.WECHAT), context(kind.kind, "en", follow_up_advice=advice)
    )
    assert len(wechat.fields["thing3"]) <= 20
    none = render(kind.builtin("en", Channel.SMS), context(kind.kind, "en", follow_up_advice=""))
    assert "Follow-up" not in none.body


def test_a_withdrawal_mentions_the_visit_only_when_one_was_booked() -> None:
    kind = MESSAGE_KINDS.kinds["referral.cancelled"]
    with_visit = render(kind.builtin("zh-CN", Channel.INBOX), context(kind.kind, "zh-CN"))
    without = render(
        kind.builtin("zh-CN", Channel.INBOX), context(kind.kind, "zh-CN", appointment_id=None)
    )
    assert "不计爽约" in with_visit.body
    assert "就诊" not in without.body


@pytest.mark.parametrize(
    "kind", sorted(k for k in MESSAGE_KINDS.kinds if k.startswith("referral."))
)
def test_referral_texts_name_no_organization_code_and_no_diagnosis(kind: str) -> None:
    message_kind = MESSAGE_KINDS.kinds[kind]
    for language in ("zh-CN", "en"):
        for channel in message_kind.channels():
            rendered = render(message_kind.builtin(language, channel), context(kind, language))
            text = " ".join([rendered.title or "", rendered.body or "", *rendered.fields.values()])
            for fact in ("h1", "t1", "I10", "cardiology", "原发性高血压"):
                assert fact not in text
