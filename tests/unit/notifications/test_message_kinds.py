"""Message kinds: every kind renders in every language and channel it uses, with its
sample and with a real event payload; malformed kind files are refused at load."""

from __future__ import annotations

from pathlib import Path

import pytest

import services.appointments.events  # registers the payload models (with the next)
import services.followup.events
import services.referrals.events  # noqa: F401
from services.notifications.domain.channels import Channel
from services.notifications.message_kinds import (
    LANGUAGES,
    MessageKind,
    MessageKindError,
    MessageKinds,
)
from services.notifications.rendering import render
from services.notifications.templates import sample_context
from shared.events import REGISTRY
from shared.privacy import redact_text

MESSAGE_KINDS = MessageKinds.load()
KINDS = sorted(MESSAGE_KINDS.kinds.values(), key=lambda k: k.kind)
CASES = [
    (kind, language, channel)
    for kind in KINDS
    for language in LANGUAGES
    for channel in kind.channels()
]


def test_every_patient_facing_appointment_event_has_a_kind() -> None:
    assert MESSAGE_KINDS.event_types() >= {
        "careloop.appointment.booked",
        "careloop.appointment.cancelled",
        "careloop.appointment.rescheduled",
        "careloop.appointment.waitlist.offered",
        "careloop.appointment.no_show",
        "careloop.appointment.checked_in",
    }
    assert {"appointment.reminder", "auth.login_code", "appointment.clinic_cancelled"} <= set(
        MESSAGE_KINDS.kinds
    )


@pytest.mark.parametrize(
    ("kind", "language", "channel"), CASES, ids=lambda v: getattr(v, "kind", str(v))
)
def test_template_renders_with_its_sample(
    kind: MessageKind, language: str, channel: Channel
) -> None:
    rendered = render(kind.builtin(language, channel), sample_context(kind, language))
    if channel == Channel.WECHAT:
        assert rendered.fields
        assert all(value for value in rendered.fields.values())
        assert rendered.page
    else:
        assert rendered.body
    if channel == Channel.INBOX:
        assert rendered.title
    if channel == Channel.SMS:
        assert rendered.body.startswith("【CareLoop】" if language == "zh-CN" else "[CareLoop]")
    if channel in (Channel.SMS, Channel.VOICE) and kind.kind != "auth.login_code":
        assert redact_text(rendered.body) == rendered.body  # no ID or phone number in it
    assert "{{" not in rendered.body
    assert "{%" not in rendered.body


def _model_for(event_type: str) -> type:
    return REGISTRY[f"{event_type}/1"]


@pytest.mark.parametrize("kind", [k for k in KINDS if k.event], ids=lambda k: k.kind)
def test_sample_is_a_valid_event_payload_and_its_dump_renders(kind: MessageKind) -> None:
    model = _model_for(kind.event)
    payload = model.model_validate(dict(kind.sample))
    context = {**payload.model_dump(mode="json"), "language": "zh-CN", "tz": "Asia/Shanghai"}
    for language in LANGUAGES:
        for channel in kind.channels():
            assert render(kind.builtin(language, channel), {**context, "language": language})


def test_reminder_context_is_the_appointment_facts_plus_the_offset() -> None:
    facts = _model_for("careloop.appointment.booked")
    reminder = MESSAGE_KINDS.kinds["appointment.reminder"]
    facts.model_validate(dict(reminder.sample))
    tomorrow = render(reminder.builtin("en", Channel.SMS), sample_context(reminder, "en"))
    soon = render(
        reminder.builtin("en", Channel.SMS),
        {**sample_context(reminder, "en"), "minutes_before": 120},
    )
    assert "tomorrow" in tomorrow.body
    assert "in 2 h" in soon.body


def test_a_hospital_cancellation_is_a_clinic_cancellation() -> None:
    data = dict(MESSAGE_KINDS.kinds["appointment.cancelled"].sample)
    assert (
        MESSAGE_KINDS.for_event("careloop.appointment.cancelled", data).kind
        == "appointment.cancelled"
    )  # type: ignore[union-attr]
    clinic = MESSAGE_KINDS.for_event(
        "careloop.appointment.cancelled", {**data, "cancelled_by_role": "hospital"}
    )
    assert clinic is not None
    assert clinic.kind == "appointment.clinic_cancelled"
    assert clinic.mandatory
    assert clinic.urgent
    assert MESSAGE_KINDS.for_event("careloop.appointment.schedule.published", {}) is None


def test_clinic_cancellation_without_an_offer_still_renders() -> None:
    kind = MESSAGE_KINDS.kinds["appointment.clinic_cancelled"]
    context = {**sample_context(kind, "zh-CN"), "rebooking_offer_id": None,
               "rebooking_offer_expires_at": None}  # fmt: skip
    rendered = render(kind.builtin("zh-CN", Channel.WECHAT), context)
    assert rendered.page is not None
    assert rendered.page.startswith("pages/appointments/detail")


GOOD = """
kind = "x.y"
event = "careloop.x.y"
push = ["sms"]
[templates.zh-CN.inbox]
title = "t"
body = "b"
[templates.zh-CN.sms]
body = "b"
[templates.en.inbox]
title = "t"
body = "b"
[templates.en.sms]
body = "b"
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('colour = "red"\n' + GOOD, "unknown keys"),
        (GOOD.replace('[templates.en.sms]\nbody = "b"\n', ""), "no en template"),
        (GOOD.replace('push = ["sms"]', 'push = ["fax"]'), "fax"),
        (GOOD.replace('push = ["sms"]', 'push = ["sms", "sms"]'), "distinct"),
        (GOOD.replace("[templates.zh-CN.sms]", "[templates.fr.sms]"), "unsupported language"),
        (GOOD.replace('body = "b"', 'text = "b"', 1), "unknown template keys"),
        ("kind = [", "x.toml"),
    ],
)
def test_malformed_kind_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "x.toml").write_text(text, encoding="utf-8")
    with pytest.raises(MessageKindError, match=message):
        MessageKinds.load(tmp_path)


def test_a_kind_defined_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.toml").write_text(GOOD, encoding="utf-8")
    with pytest.raises(MessageKindError, match="defined twice"):
        MessageKinds.load(tmp_path)
    (tmp_path / "b.toml").unlink()
    assert set(MessageKinds.load(tmp_path).kinds) == {"x.y"}
