"""Booking rules: numbered slots, pools, release times, patient limits, cancelling.

Times are aware datetimes in UTC; clinic dates are local. A rule that refuses raises a
domain error (``domain/errors.py``) with a stable code and a Chinese detail for the
patient; nothing here reads or writes anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from services.appointments.domain.errors import Conflict, Invalid
from services.appointments.domain.models import CHANNEL_POOLS, Channel, ClinicType, Pool
from services.appointments.domain.policy import BookingPolicy, PoolShares


def local_to_utc(day: date, at: time, tz: str) -> datetime:
    return datetime.combine(day, at, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def clinic_date_of(moment: datetime, tz: str) -> date:
    return moment.astimezone(ZoneInfo(tz)).date()


def slot_windows(
    day: date, start: time, end: time, count: int, tz: str
) -> list[tuple[int, datetime, datetime]]:
    """``count`` numbered slots (号序 1..count) splitting the session evenly."""
    begin, finish = local_to_utc(day, start, tz), local_to_utc(day, end, tz)
    if finish <= begin:
        raise Invalid("session_times_invalid", "the session must end after it starts")
    length = finish - begin  # boundaries from the whole length: no drift, last ends at `end`
    return [
        (n + 1, begin + length * n / count, begin + length * (n + 1) / count) for n in range(count)
    ]


def round_half_up(count: int, share: float) -> int:
    """``share`` of ``count`` to the nearest whole number, halves up, in decimal arithmetic.

    ``Decimal(repr(share))`` is the share as written (0.35, not 0.34999…), so 0.35 × 10 is
    exactly 3.5 and becomes 4; Python's ``round`` would round halves to even instead.
    """
    exact = Decimal(repr(share)) * count
    return int(exact.to_integral_value(rounding=ROUND_HALF_UP))


def referral_slots(kind: ClinicType, count: int, share: float, expert_min_fraction: float) -> int:
    """The referral pool of one session: ``round_half_up(share × count)`` numbers.

    Rounded per session, so identical sessions always get identical pools whatever else
    is published with them. The expert rule (at least ``expert_min_fraction`` of the
    referral numbers on expert sessions) applied to one session is
    :func:`allocate_referral_slots` of that session alone: it never changes the count.
    """
    return allocate_referral_slots([("session", kind, count)], share, expert_min_fraction)[
        "session"
    ]


def allocate_referral_slots(
    schedules: Sequence[tuple[str, ClinicType, int]], share: float, expert_min_fraction: float
) -> dict[str, int]:
    """How many slots of each schedule go to the referral pool.

    ``share`` of all slots, of which at least ``expert_min_fraction`` on expert schedules
    where there are any (capped by their capacity).
    """
    total_slots = sum(count for _, _, count in schedules)
    wanted = round_half_up(total_slots, share)
    experts = [(key, count) for key, kind, count in schedules if kind == ClinicType.EXPERT]
    expert_capacity = sum(count for _, count in experts)
    expert_wanted = min(math.ceil(wanted * expert_min_fraction), expert_capacity)
    result = {key: 0 for key, _, _ in schedules}
    _spread(result, experts, expert_wanted)
    rest = [(key, count - result[key]) for key, _, count in schedules]
    _spread(result, rest, wanted - expert_wanted)
    return result


def _spread(result: dict[str, int], capacities: list[tuple[str, int]], amount: int) -> None:
    """Add ``amount`` across keys in proportion to capacity (largest remainder)."""
    capacity = sum(c for _, c in capacities)
    if amount <= 0 or capacity <= 0:
        return
    amount = min(amount, capacity)
    exact = [(key, amount * c / capacity, c) for key, c in capacities]
    floors = {key: min(math.floor(x), c) for key, x, c in exact}
    left = amount - sum(floors.values())
    by_remainder = sorted(exact, key=lambda item: item[1] - math.floor(item[1]), reverse=True)
    for key, _, c in by_remainder:
        if left <= 0:
            break
        if floors[key] < c:
            floors[key] += 1
            left -= 1
    for key, add in floors.items():
        result[key] += add


def assign_pools(count: int, referral: int, shares: PoolShares) -> list[Pool]:
    """The pool of each slot number, reserved slots spread through the session."""
    reserved = [
        (Pool.REFERRAL, referral),
        (Pool.HOTLINE, round(count * shares.hotline)),
        (Pool.ONSITE, round(count * shares.onsite)),
    ]
    pools = [Pool.PUBLIC] * count
    taken: set[int] = set()
    for pool, n in reserved:
        n = min(n, count - len(taken))
        if n <= 0:
            continue
        free = [i for i in range(count) if i not in taken]
        stride = len(free) / n
        for k in range(n):
            index = free[min(int(k * stride + stride / 2), len(free) - 1)]
            pools[index] = pool
            taken.add(index)
    return pools


def release_at(policy: BookingPolicy, clinic_date: date, department_id: str) -> datetime:
    rule = policy.release_for(department_id)
    return local_to_utc(clinic_date - timedelta(days=rule.days_ahead), rule.at, policy.timezone)


def referral_release_at(policy: BookingPolicy, clinic_date: date, department_id: str) -> datetime:
    """The referral pool opens early: never later than the public release."""
    rule = policy.release_for(department_id)
    day = clinic_date - timedelta(days=policy.referral_release_days_ahead)
    early = local_to_utc(day, rule.at, policy.timezone)
    return min(early, release_at(policy, clinic_date, department_id))


def pool_return_at(policy: BookingPolicy, session_start: datetime) -> datetime:
    return session_start - timedelta(hours=policy.pool_return_hours_before)


def pools_for(channel: Channel) -> tuple[Pool, ...]:
    return CHANNEL_POOLS[channel]


def check_released(
    policy: BookingPolicy,
    *,
    now: datetime,
    channel: Channel,
    pool: Pool,
    clinic_date: date,
    department_id: str,
) -> None:
    """Refuse a booking before its release time, saying when it opens."""
    opens = release_at(policy, clinic_date, department_id)
    if channel == Channel.REFERRAL and pool == Pool.REFERRAL:
        opens = referral_release_at(policy, clinic_date, department_id)
    if now < opens:
        local = opens.astimezone(ZoneInfo(policy.timezone))
        raise Conflict(
            "slot_not_released",
            f"booking opens at {local.isoformat()}",
            detail_zh=f"该号源将于 {local:%Y-%m-%d %H:%M} 开放预约",
            extra={"opens_at": opens.isoformat()},
        )


def check_not_started(*, now: datetime, starts_at: datetime) -> None:
    if now >= starts_at:
        raise Conflict(
            "slot_in_past", "this slot has already started", detail_zh="该号源时间已过，无法预约"
        )


def check_patient_limits(
    policy: BookingPolicy,
    *,
    active_bookings: int,
    same_department_day: int,
    same_resource_session: int,
    real_name_day: int,
) -> None:
    if same_resource_session > 0:
        raise Conflict(
            "duplicate_booking",
            "already booked with this doctor in this session",
            detail_zh="您已预约该医生同一时段的号源",
        )
    if same_department_day >= policy.max_bookings_per_department_per_day:
        raise Conflict(
            "department_day_limit",
            "already booked in this department that day",
            detail_zh="同一科室同一天只能预约一次",
        )
    if active_bookings >= policy.max_active_bookings_per_patient:
        raise Conflict(
            "active_booking_limit",
            f"at most {policy.max_active_bookings_per_patient} active bookings",
            detail_zh="您的待就诊预约已达上限",
        )
    if real_name_day >= policy.max_bookings_per_real_name_per_day:
        raise Conflict(
            "real_name_day_limit",
            "too many bookings for this person today",
            detail_zh="该实名就诊人今日预约次数已达上限",
        )


def check_cancellable(
    policy: BookingPolicy, *, now: datetime, starts_at: datetime, by_staff: bool
) -> None:
    if now >= starts_at:
        raise Conflict(
            "cancel_too_late",
            "the appointment has already started",
            detail_zh="就诊时间已到，无法取消",
        )
    cutoff = starts_at - timedelta(minutes=policy.cancel_cutoff_minutes)
    if now >= cutoff and not by_staff:
        raise Conflict(
            "cancel_cutoff_passed",
            f"cancellations close {policy.cancel_cutoff_minutes} minutes before",
            detail_zh=f"就诊前 {policy.cancel_cutoff_minutes} 分钟内不可在线取消",
        )


def is_late_cancellation(policy: BookingPolicy, *, now: datetime, starts_at: datetime) -> bool:
    return starts_at - now < timedelta(hours=policy.late_cancel_window_hours)


def open_pool_names(
    policy: BookingPolicy, schedule: Mapping[str, Any], channel: Channel, now: datetime
) -> list[str]:
    """:func:`open_pools` for a session document, as the pool names admission uses."""
    return [
        p.value
        for p in open_pools(
            policy,
            now=now,
            channel=channel,
            clinic_date=date.fromisoformat(schedule["clinic_date"]),
            department_id=schedule["department_id"],
        )
    ]


def open_pools(
    policy: BookingPolicy, *, now: datetime, channel: Channel, clinic_date: date, department_id: str
) -> list[Pool]:
    """The pools ``channel`` may book from now, in order of preference.

    Before the public release only the referral pool is open, and only to referrals;
    nothing open at all is refused with the time booking opens.
    """
    public_open = now >= release_at(policy, clinic_date, department_id)
    pools: list[Pool] = []
    for pool in pools_for(channel):
        if pool == Pool.REFERRAL:
            if now >= referral_release_at(policy, clinic_date, department_id):
                pools.append(pool)
        elif public_open:
            pools.append(pool)
    if not pools:
        check_released(
            policy,
            now=now,
            channel=channel,
            pool=pools_for(channel)[0],
            clinic_date=clinic_date,
            department_id=department_id,
        )
    return pools
