"""Changes to a booking: reschedule, check-in, extra numbers (加号).

Times are aware datetimes in UTC; clinic dates are local. A rule that refuses raises a
domain error (``domain/errors.py``) with a stable code and a Chinese detail for the
patient; nothing here reads or writes anything.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from services.appointments.domain.booking_rules import check_cancellable
from services.appointments.domain.errors import Conflict
from services.appointments.domain.models import Channel
from services.appointments.domain.policy import BookingPolicy


def checkin_window(
    policy: BookingPolicy, starts_at: datetime, ends_at: datetime
) -> tuple[datetime, datetime]:
    opens = starts_at - timedelta(minutes=policy.checkin_opens_minutes_before)
    closes = ends_at - timedelta(minutes=policy.checkin_closes_minutes_before_end)
    return opens, closes


def check_checkin(
    policy: BookingPolicy, *, now: datetime, starts_at: datetime, ends_at: datetime
) -> None:
    opens, closes = checkin_window(policy, starts_at, ends_at)
    if now < opens:
        raise Conflict(
            "checkin_not_open",
            "check-in has not opened yet",
            detail_zh="尚未到签到时间",
            extra={"opens_at": opens.isoformat()},
        )
    if now > closes:
        raise Conflict("checkin_closed", "check-in has closed", detail_zh="签到已截止")


# AppointmentStatus values (a StrEnum, so these compare equal to its members)
_BOOKED = "booked"


_CHECKED_IN = "checked_in"


def check_reschedulable(
    policy: BookingPolicy, *, status: str, now: datetime, starts_at: datetime, by_staff: bool
) -> None:
    """Only a booked appointment moves, under the same cut-off as cancelling it."""
    if status != _BOOKED:
        raise Conflict(
            "appointment_not_reschedulable",
            f"an appointment that is {status} cannot be rescheduled",
            detail_zh="该预约当前状态不可改约",
            extra={"current_status": status},
        )
    check_cancellable(policy, now=now, starts_at=starts_at, by_staff=by_staff)


def check_other_slot(current_slot_id: str, wanted_slot_id: str | None) -> None:
    if wanted_slot_id is not None and wanted_slot_id == current_slot_id:
        raise Conflict(
            "reschedule_same_slot",
            "the appointment already holds this slot",
            detail_zh="新号源与原预约相同",
        )


def check_checkin_status(status: str) -> None:
    if status == _CHECKED_IN:
        raise Conflict(
            "already_checked_in", "this appointment is already checked in", detail_zh="您已签到"
        )
    if status != _BOOKED:
        raise Conflict(
            "appointment_not_booked",
            f"an appointment that is {status} cannot be checked in",
            detail_zh="该预约当前状态不可签到",
            extra={"current_status": status},
        )


def check_extra_number_allowed(*, now: datetime, session_ends_at: datetime) -> None:
    if now >= session_ends_at:
        raise Conflict(
            "session_ended", "this session has already ended", detail_zh="本次出诊已结束，无法加号"
        )


def extra_slot_window(
    last_slot: tuple[datetime, datetime] | None, session_ends_at: datetime
) -> tuple[datetime, datetime]:
    """An extra number is seen in the session's last slot window, else at the session end."""
    if last_slot is None:
        return session_ends_at, session_ends_at
    return last_slot


def extra_number_channel(*, by_nurse: bool) -> Channel:
    """A nurse adds numbers at the clinic desk; other staff on the phone or in the room."""
    return Channel.ONSITE if by_nurse else Channel.HOTLINE
