"""Rules for rescheduling, check-in and extra numbers (加号): pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.appointments.domain import change_rules
from services.appointments.domain.errors import Conflict
from services.appointments.domain.models import AppointmentStatus, Channel
from services.appointments.domain.policy import DEFAULT_POLICY

pytestmark = pytest.mark.unit

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2025, 3, 17)
START = datetime.combine(DAY, time(9, 0), tzinfo=SHANGHAI).astimezone(UTC)
MINUTE = timedelta(minutes=1)


def conflict_code(call: Callable[..., object], *args: object, **kwargs: object) -> str:
    with pytest.raises(Conflict) as caught:
        call(*args, **kwargs)
    assert caught.value.detail_zh, "patients must get a Chinese explanation"
    return caught.value.code


@pytest.mark.parametrize(
    "status",
    [
        AppointmentStatus.CHECKED_IN,
        AppointmentStatus.CANCELLED,
        AppointmentStatus.NO_SHOW,
        AppointmentStatus.RESCHEDULED,
    ],
)
def test_only_a_booked_appointment_can_be_rescheduled(status: AppointmentStatus) -> None:
    with pytest.raises(Conflict) as caught:
        change_rules.check_reschedulable(
            DEFAULT_POLICY,
            status=status.value,
            now=START - timedelta(days=2),
            starts_at=START,
            by_staff=True,
        )
    assert caught.value.code == "appointment_not_reschedulable"
    assert caught.value.extra == {"current_status": status.value}
    assert caught.value.detail_zh == "该预约当前状态不可改约"


def test_rescheduling_follows_the_cancellation_cutoff_which_staff_may_override() -> None:
    cutoff = START - timedelta(minutes=DEFAULT_POLICY.cancel_cutoff_minutes)
    booked = AppointmentStatus.BOOKED.value
    policy = DEFAULT_POLICY
    change_rules.check_reschedulable(
        policy, status=booked, now=cutoff - MINUTE, starts_at=START, by_staff=False
    )
    assert (
        conflict_code(
            change_rules.check_reschedulable,
            policy,
            status=booked,
            now=cutoff,
            starts_at=START,
            by_staff=False,
        )
        == "cancel_cutoff_passed"
    )
    change_rules.check_reschedulable(
        policy, status=booked, now=cutoff, starts_at=START, by_staff=True
    )
    assert (
        conflict_code(
            change_rules.check_reschedulable,
            policy,
            status=booked,
            now=START,
            starts_at=START,
            by_staff=True,
        )
        == "cancel_too_late"
    )


def test_moving_to_the_slot_already_held_is_refused() -> None:
    change_rules.check_other_slot("s.3", None)
    change_rules.check_other_slot("s.3", "s.4")
    assert conflict_code(change_rules.check_other_slot, "s.3", "s.3") == "reschedule_same_slot"


def test_check_in_status() -> None:
    change_rules.check_checkin_status(AppointmentStatus.BOOKED.value)
    assert (
        conflict_code(change_rules.check_checkin_status, AppointmentStatus.CHECKED_IN.value)
        == "already_checked_in"
    )
    for status in (AppointmentStatus.CANCELLED, AppointmentStatus.NO_SHOW, "rescheduled"):
        assert (
            conflict_code(change_rules.check_checkin_status, str(status))
            == "appointment_not_booked"
        )


def test_extra_numbers_stop_when_the_session_ends() -> None:
    ends = START + timedelta(hours=3)
    change_rules.check_extra_number_allowed(now=ends - MINUTE, session_ends_at=ends)
    assert (
        conflict_code(change_rules.check_extra_number_allowed, now=ends, session_ends_at=ends)
        == "session_ended"
    )


def test_an_extra_number_takes_the_last_slot_window_else_the_session_end() -> None:
    last = (START + 11 * MINUTE, START + 12 * MINUTE)
    ends = START + 12 * MINUTE
    assert change_rules.extra_slot_window(last, ends) == last
    assert change_rules.extra_slot_window(None, ends) == (ends, ends)


def test_nurses_add_numbers_on_site_other_staff_through_the_hotline_pool() -> None:
    assert change_rules.extra_number_channel(by_nurse=True) is Channel.ONSITE
    assert change_rules.extra_number_channel(by_nurse=False) is Channel.HOTLINE
