"""Cancelled sessions (停诊) and priority rebooking.

Times are aware datetimes in UTC; clinic dates are local. A rule that refuses raises a
domain error (``domain/errors.py``) with a stable code and a Chinese detail for the
patient; nothing here reads or writes anything.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from services.appointments.domain.booking_rules import clinic_date_of
from services.appointments.domain.errors import Conflict

REBOOKING_OFFER_HOURS = 48


REBOOKING_HORIZON_DAYS = 14


def check_session_cancellable(*, status: str, now: datetime, ends_at: datetime) -> None:
    """A published session that has not ended may be cancelled, once."""
    if status == "cancelled":
        raise Conflict(
            "schedule_already_cancelled",
            "this session is already cancelled",
            detail_zh="该出诊已停诊",
        )
    if now >= ends_at:
        raise Conflict("schedule_ended", "this session has already ended", detail_zh="该出诊已结束")


def rebooking_offer_expires_at(
    offered_at: datetime, hours: int = REBOOKING_OFFER_HOURS
) -> datetime:
    return offered_at + timedelta(hours=hours)


def rebooking_horizon(
    now: datetime, tz: str, days: int = REBOOKING_HORIZON_DAYS
) -> tuple[date, date]:
    """The clinic dates an alternative session may fall on: today through ``days`` ahead."""
    today = clinic_date_of(now, tz)
    return today, today + timedelta(days=days)


def alternative_valid_until(offer_expires_at: datetime, starts_at: datetime) -> datetime:
    """An alternative can be taken until the offer expires or the session starts."""
    return min(offer_expires_at, starts_at)


def check_rebooking_alternative(
    *, now: datetime, offer_expires_at: datetime, starts_at: datetime
) -> None:
    if now >= offer_expires_at:
        raise Conflict(
            "rebooking_offer_expired",
            "this rebooking offer has expired",
            detail_zh="优先改约已过期，请正常预约",
        )
    if now >= starts_at:
        raise Conflict(
            "alternative_started",
            "this alternative session has already started",
            detail_zh="该替代出诊已开始，请选择其他时段",
        )
