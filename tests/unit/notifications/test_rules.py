"""Pure delivery rules: quiet hours, channel plans, retries, reminder times."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from services.notifications.domain.channels import Channel
from services.notifications.domain.rules import (
    Preferences,
    QuietHours,
    fallback_after,
    is_expired,
    plan_channels,
    quiet_until,
    reminder_times,
    retry_delay,
    send_at,
)

TZ = "Asia/Shanghai"
NIGHT = QuietHours.parse("22:00", "07:00")


def shanghai(hour: int, minute: int = 0, day: int = 24) -> datetime:
    """A UTC moment at the given Shanghai wall-clock time on 2026-11-<day>."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


@pytest.mark.parametrize(
    ("clock", "inside"),
    [
        (time(21, 59), False),
        (time(22, 0), True),
        (time(23, 30), True),
        (time(0, 0), True),
        (time(6, 59), True),
        (time(7, 0), False),
        (time(12, 0), False),
    ],
)
def test_quiet_hours_across_midnight(clock: time, inside: bool) -> None:
    assert NIGHT.contains(clock) is inside


def test_quiet_hours_within_a_day_and_disabled() -> None:
    nap = QuietHours.parse("12:00", "14:00")
    assert nap.contains(time(13, 0))
    assert not nap.contains(time(14, 0))
    assert not QuietHours.parse("00:00", "00:00").contains(time(3, 0))


def test_quiet_until_ends_next_morning_in_hospital_time() -> None:
    end = quiet_until(shanghai(23, 15), NIGHT, TZ)
    assert end == shanghai(7, 0, day=25)
    early = quiet_until(shanghai(5, 0), NIGHT, TZ)
    assert early == shanghai(7, 0)
    assert quiet_until(shanghai(9, 0), NIGHT, TZ) is None
    assert quiet_until(shanghai(23, 0), None, TZ) is None


def test_urgent_messages_pass_quiet_hours() -> None:
    prefs = Preferences(quiet_hours=NIGHT)
    now = shanghai(23, 0)
    assert send_at(now, urgent=True, prefs=prefs, timezone=TZ) == now
    assert send_at(now, urgent=False, prefs=prefs, timezone=TZ) == shanghai(7, 0, day=25)
    assert send_at(shanghai(10, 0), urgent=False, prefs=prefs, timezone=TZ) == shanghai(10, 0)


def test_plan_skips_channels_turned_off_unless_mandatory() -> None:
    prefs = Preferences(disabled=frozenset({Channel.SMS}))
    reachable = {Channel.WECHAT: True, Channel.SMS: True, Channel.VOICE: True}
    chain = (Channel.WECHAT, Channel.SMS, Channel.VOICE)
    plan = plan_channels(chain, mandatory=False, prefs=prefs, reachable=reachable)
    assert plan.chain == (Channel.WECHAT, Channel.VOICE)
    assert [(s.channel, s.reason) for s in plan.skipped] == [(Channel.SMS, "channel_off")]
    mandatory = plan_channels(chain, mandatory=True, prefs=prefs, reachable=reachable)
    assert mandatory.chain == chain
    assert mandatory.skipped == ()


def test_plan_skips_channels_without_an_address() -> None:
    reachable = {Channel.WECHAT: False, Channel.SMS: True}
    plan = plan_channels(
        (Channel.WECHAT, Channel.SMS, Channel.VOICE),
        mandatory=True,
        prefs=Preferences(),
        reachable=reachable,
    )
    assert plan.chain == (Channel.SMS,)
    assert {s.channel: s.reason for s in plan.skipped} == {
        Channel.WECHAT: "no_address",
        Channel.VOICE: "no_address",
    }


def test_fallback_order_follows_the_plan() -> None:
    chain = [Channel.WECHAT, Channel.SMS, Channel.VOICE]
    assert fallback_after(chain, Channel.WECHAT) == Channel.SMS
    assert fallback_after(chain, Channel.SMS) == Channel.VOICE
    assert fallback_after(chain, Channel.VOICE) is None
    assert fallback_after([Channel.SMS], Channel.WECHAT) is None


def test_retry_backoff_doubles_up_to_a_cap() -> None:
    delays = [retry_delay(n, base=30, cap=300).total_seconds() for n in range(1, 6)]
    assert delays == [30, 60, 120, 240, 300]


def test_reminders_ahead_of_the_visit_only() -> None:
    starts = shanghai(9, 0, day=26)
    due = reminder_times(starts, [1440, 120], now=shanghai(10, 0, day=24))
    assert due == [(1440, shanghai(9, 0, day=25)), (120, shanghai(7, 0, day=26))]
    late = reminder_times(starts, [1440, 120], now=shanghai(12, 0, day=25))
    assert late == [(120, shanghai(7, 0, day=26))]
    assert reminder_times(starts, [120], now=starts) == []


def test_expiry() -> None:
    now = shanghai(10, 0)
    assert is_expired(now, now)
    assert not is_expired(now, now + timedelta(seconds=1))
    assert not is_expired(now, None)
