"""Booking rules as pure functions. Times are aware datetimes in UTC; clinic dates are local.

A rule that refuses raises a :class:`shared.problems.Problem` with a stable code and a
Chinese detail for the patient; nothing here reads or writes anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
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


# --- cancelled sessions (停诊) and priority rebooking -------------------------------------

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


# --- appeals -------------------------------------------------------------------------------


def is_banned(banned_until: datetime | None, now: datetime) -> bool:
    return banned_until is not None and banned_until > now


def check_appeal_allowed(banned_until: datetime | None, now: datetime, *, pending: bool) -> None:
    """A patient appeals only a running ban, and one appeal at a time."""
    if not is_banned(banned_until, now):
        raise Conflict(
            "not_banned",
            "booking is not suspended for this patient",
            detail_zh="该就诊人当前未被暂停预约，无需申诉",
        )
    if pending:
        raise Conflict(
            "appeal_pending",
            "an appeal is already waiting for a decision",
            detail_zh="已有申诉正在处理中，请耐心等待",
        )


def check_appeal_undecided(status: str) -> None:
    if status != "pending":
        raise Conflict(
            "appeal_already_decided",
            f"this appeal is already {status}",
            detail_zh="该申诉已处理",
            extra={"current_status": status},
        )


# --- reschedule, check-in queue, extra numbers (加号) -----------------------------------

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


# --- waitlist (候补) -------------------------------------------------------------------


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
