"""Booking rules as pure functions. Times are aware datetimes in UTC; clinic dates are local.

A rule that refuses raises a :class:`shared.problems.Problem` with a stable code and a
Chinese detail for the patient; nothing here reads or writes anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.appointments.domain.models import CHANNEL_POOLS, Channel, ClinicType, Pool
from services.appointments.domain.policy import BookingPolicy, PenaltyRule, PoolShares
from shared.problems import Conflict, Forbidden, Unprocessable


def local_to_utc(day: date, at: time, tz: str) -> datetime:
    return datetime.combine(day, at, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def clinic_date_of(moment: datetime, tz: str) -> date:
    return moment.astimezone(ZoneInfo(tz)).date()


# --- schedules and slots ---------------------------------------------------------------


def slot_windows(
    day: date, start: time, end: time, count: int, tz: str
) -> list[tuple[int, datetime, datetime]]:
    """``count`` numbered slots (号序 1..count) splitting the session evenly."""
    begin, finish = local_to_utc(day, start, tz), local_to_utc(day, end, tz)
    if finish <= begin:
        raise Unprocessable("session_times_invalid", "the session must end after it starts")
    length = finish - begin  # boundaries from the whole length: no drift, last ends at `end`
    return [
        (n + 1, begin + length * n / count, begin + length * (n + 1) / count) for n in range(count)
    ]


def allocate_referral_slots(
    schedules: Sequence[tuple[str, ClinicType, int]], share: float, expert_min_fraction: float
) -> dict[str, int]:
    """How many slots of each schedule go to the referral pool.

    ``share`` of all slots, of which at least ``expert_min_fraction`` on expert schedules
    where there are any (capped by their capacity).
    """
    total_slots = sum(count for _, _, count in schedules)
    wanted = round(total_slots * share)
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


# --- release and pools -----------------------------------------------------------------


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


# --- limits and penalties --------------------------------------------------------------


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


def ban_until(offences: Sequence[datetime], rule: PenaltyRule, now: datetime) -> datetime | None:
    """When a ban from these offences ends, or None if they do not (or no longer) ban."""
    window_start = now - timedelta(days=rule.window_days)
    recent = sorted(t for t in offences if t >= window_start)
    if len(recent) < rule.threshold:
        # an older ban may still run: find the latest moment the threshold was reached
        return _older_ban(offences, rule, now)
    until = recent[-1] + timedelta(days=rule.ban_days)
    return until if until > now else None


def _older_ban(offences: Sequence[datetime], rule: PenaltyRule, now: datetime) -> datetime | None:
    ordered = sorted(offences)
    for i in range(len(ordered) - rule.threshold, -1, -1):
        group = ordered[i : i + rule.threshold]
        if group[-1] - group[0] <= timedelta(days=rule.window_days):
            until = group[-1] + timedelta(days=rule.ban_days)
            return until if until > now else None
    return None


def check_not_banned(banned_until: datetime | None, now: datetime, tz: str) -> None:
    if banned_until is not None and banned_until > now:
        local = banned_until.astimezone(ZoneInfo(tz))
        raise Forbidden(
            "patient_banned",
            f"booking is suspended until {local.isoformat()}",
            detail_zh=f"因多次爽约或临时取消，{local:%Y-%m-%d} 前暂停预约",
            extra={"banned_until": banned_until.isoformat()},
        )


# --- cancel, check-in, waitlist --------------------------------------------------------


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


def waitlist_closes_at(policy: BookingPolicy, clinic_date: date) -> datetime:
    return local_to_utc(clinic_date - timedelta(days=1), policy.waitlist_closes_at, policy.timezone)


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
