"""Waitlist (候补) rules.

Times are aware datetimes in UTC; clinic dates are local. A rule that refuses raises a
domain error (``domain/errors.py``) with a stable code and a Chinese detail for the
patient; nothing here reads or writes anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from services.appointments.domain.booking_rules import local_to_utc
from services.appointments.domain.errors import Conflict
from services.appointments.domain.models import CHANNEL_POOLS, Channel, Pool
from services.appointments.domain.policy import BookingPolicy


def waitlist_closes_at(policy: BookingPolicy, clinic_date: date) -> datetime:
    return local_to_utc(clinic_date - timedelta(days=1), policy.waitlist_closes_at, policy.timezone)


def check_waitlist_open(policy: BookingPolicy, *, now: datetime, clinic_date: date) -> None:
    """Joining closes at ``waitlist_closes_at`` on the evening before the session."""
    closes = waitlist_closes_at(policy, clinic_date)
    if now >= closes:
        local = closes.astimezone(ZoneInfo(policy.timezone))
        raise Conflict(
            "waitlist_closed",
            f"the waitlist for this session closed at {local.isoformat()}",
            detail_zh=f"该时段候补已于 {local:%Y-%m-%d %H:%M} 截止",
            extra={"closes_at": closes.isoformat()},
        )


def check_no_bookable_slot(remaining: dict[str, int], pools: Sequence[Pool]) -> None:
    """The waitlist is for full sessions: refuse while the caller's pools still have slots."""
    left = sum(remaining.get(pool.value, 0) for pool in pools)
    if left > 0:
        raise Conflict(
            "slots_available",
            f"{left} slot(s) can still be booked in this session",
            detail_zh="该时段仍有可预约号源，请直接预约",
            extra={"remaining": left},
        )


def check_waitlist_limit(policy: BookingPolicy, *, active_entries: int) -> None:
    limit = policy.waitlist_max_entries_per_patient
    if active_entries >= limit:
        raise Conflict(
            "waitlist_limit",
            f"a patient may wait for at most {limit} sessions at once",
            detail_zh=f"每位就诊人最多同时候补 {limit} 个时段",
            extra={"limit": limit},
        )


def waitlist_offer_expires_at(policy: BookingPolicy, now: datetime) -> datetime:
    return now + timedelta(minutes=policy.waitlist_offer_minutes)


def waitlist_channels_for(pool: Pool) -> list[Channel]:
    """The channels whose waiting patients may be offered a freed slot of ``pool``."""
    return [channel for channel, pools in CHANNEL_POOLS.items() if pool in pools]


def may_offer_waitlist(
    policy: BookingPolicy, *, now: datetime, clinic_date: date, slot_starts_at: datetime
) -> bool:
    """A freed slot goes to the waitlist only while the queue is open and the slot ahead."""
    return now < waitlist_closes_at(policy, clinic_date) and now < slot_starts_at
