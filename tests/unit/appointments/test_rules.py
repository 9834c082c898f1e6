"""The appointment booking rules, checked the way a hospital's booking office would.

Times are aware UTC datetimes; clinic dates and the times patients read are
Asia/Shanghai (UTC+8, no daylight saving), so 08:00 local is 00:00 UTC.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.appointments.domain import booking_rules, change_rules, penalty_rules, waitlist_rules
from services.appointments.domain.errors import DomainError
from services.appointments.domain.models import CHANNEL_POOLS, Channel, ClinicType, Pool
from services.appointments.domain.policy import (
    DEFAULT_POLICY,
    BookingPolicy,
    PenaltyRule,
    PoolShares,
    ReleaseRule,
)
from services.appointments.routes.errors import to_problem
from shared.problems import Conflict, Forbidden, Problem, Unprocessable

pytestmark = pytest.mark.unit

TZ = "Asia/Shanghai"
SHANGHAI = ZoneInfo(TZ)
POLICY = DEFAULT_POLICY
CLINIC_DATE = date(2025, 3, 17)  # a Monday
DEPT = "cardiology"

EXPERT, GENERAL, SPECIAL = ClinicType.EXPERT, ClinicType.GENERAL, ClinicType.SPECIAL
SECOND = timedelta(seconds=1)
STAFF_ONLY_CODES = {"session_times_invalid"}  # seen by schedulers, not patients


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """A Shanghai wall-clock time as an aware UTC datetime."""
    return datetime.combine(day, time(hour, minute), tzinfo=SHANGHAI).astimezone(UTC)


def refused(
    kind: type[Problem], code: str, status: int, call: Callable[..., Any], *args: Any, **kw: Any
) -> Problem:
    """Run ``call``, insist it refuses with this problem, and hand the problem back."""
    with pytest.raises(DomainError) as caught:
        call(*args, **kw)
    problem = to_problem(caught.value)  # what the client gets
    assert isinstance(problem, kind)
    assert problem.code == code
    assert problem.status == status
    if code not in STAFF_ONLY_CODES:
        assert problem.detail_zh, "patients must get a Chinese explanation"
    return problem


# --- local time helpers -------------------------------------------------------------------


def test_local_to_utc_is_eight_hours_behind_shanghai() -> None:
    assert booking_rules.local_to_utc(CLINIC_DATE, time(8, 0), TZ) == datetime(
        2025, 3, 17, 0, 0, tzinfo=UTC
    )
    assert booking_rules.local_to_utc(CLINIC_DATE, time(7, 0), TZ) == datetime(
        2025, 3, 16, 23, 0, tzinfo=UTC
    )


def test_clinic_date_is_the_local_date() -> None:
    late_utc_evening = datetime(2025, 3, 16, 17, 30, tzinfo=UTC)  # 01:30 on the 17th locally
    assert booking_rules.clinic_date_of(late_utc_evening, TZ) == date(2025, 3, 17)
    assert booking_rules.clinic_date_of(datetime(2025, 3, 16, 15, 59, tzinfo=UTC), TZ) == date(
        2025, 3, 16
    )


# --- slot_windows -------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 4, 7, 12, 30])
def test_slot_windows_count_and_numbering(count: int) -> None:
    windows = booking_rules.slot_windows(CLINIC_DATE, time(8, 0), time(12, 0), count, TZ)
    assert len(windows) == count
    assert [number for number, _, _ in windows] == list(range(1, count + 1))


def test_slot_windows_morning_session_in_utc() -> None:
    windows = booking_rules.slot_windows(CLINIC_DATE, time(8, 0), time(12, 0), 16, TZ)
    first_number, first_start, first_end = windows[0]
    assert first_number == 1
    assert first_start == datetime(2025, 3, 17, 0, 0, tzinfo=UTC)  # 08:00 local
    assert first_end == datetime(2025, 3, 17, 0, 15, tzinfo=UTC)
    assert windows[-1][2] == datetime(2025, 3, 17, 4, 0, tzinfo=UTC)  # 12:00 local
    for _, start, end in windows:
        assert start.utcoffset() == timedelta(0)
        assert end.utcoffset() == timedelta(0)
        assert end - start == timedelta(minutes=15)


def test_slot_windows_early_session_falls_on_the_previous_utc_day() -> None:
    windows = booking_rules.slot_windows(CLINIC_DATE, time(7, 0), time(8, 0), 2, TZ)
    assert windows[0][1] == datetime(2025, 3, 16, 23, 0, tzinfo=UTC)
    assert windows[1][1] == datetime(2025, 3, 16, 23, 30, tzinfo=UTC)
    assert booking_rules.clinic_date_of(windows[0][1], TZ) == CLINIC_DATE


@pytest.mark.parametrize(
    ("start", "end", "count"),
    [
        (time(8, 0), time(12, 0), 16),
        (time(8, 0), time(12, 0), 7),  # 4 h do not split evenly into 7 whole microseconds
        (time(13, 30), time(17, 0), 11),
        (time(18, 0), time(21, 0), 1),
        (time(8, 0), time(11, 30), 300),
    ],
)
def test_slot_windows_tile_the_session_evenly(start: time, end: time, count: int) -> None:
    windows = booking_rules.slot_windows(CLINIC_DATE, start, end, count, TZ)
    assert windows[0][1] == booking_rules.local_to_utc(CLINIC_DATE, start, TZ)
    assert windows[-1][2] == booking_rules.local_to_utc(CLINIC_DATE, end, TZ)
    for (_, _, end_of_one), (_, start_of_next, _) in pairwise(windows):
        assert end_of_one == start_of_next
    lengths = [finish - begin for _, begin, finish in windows]
    assert max(lengths) - min(lengths) <= timedelta(microseconds=1)
    session = booking_rules.local_to_utc(CLINIC_DATE, end, TZ) - booking_rules.local_to_utc(
        CLINIC_DATE, start, TZ
    )
    assert abs(lengths[0] - session / count) <= timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("start", "end"),
    [(time(12, 0), time(8, 0)), (time(8, 0), time(8, 0)), (time(17, 0), time(16, 59))],
)
def test_slot_windows_refuse_a_session_ending_before_it_starts(start: time, end: time) -> None:
    problem = refused(
        Unprocessable,
        "session_times_invalid",
        422,
        booking_rules.slot_windows,
        CLINIC_DATE,
        start,
        end,
        4,
        TZ,
    )
    assert problem.extra == {}


# --- allocate_referral_slots -------------------------------------------------------------

Schedules = list[tuple[str, ClinicType, int]]


def assert_sound_allocation(
    schedules: Schedules, share: float, expert_min_fraction: float, result: dict[str, int]
) -> None:
    counts = {key: count for key, _, count in schedules}
    wanted = booking_rules.round_half_up(sum(counts.values()), share)
    assert set(result) == set(counts)
    assert sum(result.values()) == wanted
    for key, given in result.items():
        assert 0 <= given <= counts[key], key
    expert_capacity = sum(c for _, kind, c in schedules if kind == EXPERT)
    on_experts = sum(result[key] for key, kind, _ in schedules if kind == EXPERT)
    assert on_experts >= min(math.ceil(wanted * expert_min_fraction), expert_capacity)


ALLOCATION_SHAPES = [
    pytest.param(
        [("e1", EXPERT, 20), ("g1", GENERAL, 30), ("g2", GENERAL, 30)], 0.3, 0.5, id="mixed"
    ),
    pytest.param([("e1", EXPERT, 10), ("e2", EXPERT, 15)], 0.2, 0.5, id="experts-only"),
    pytest.param(
        [("g1", GENERAL, 25), ("g2", GENERAL, 15), ("s1", SPECIAL, 10)], 0.3, 0.5, id="no-experts"
    ),
    pytest.param([("e1", EXPERT, 2), ("g1", GENERAL, 40)], 0.5, 0.5, id="tiny-expert"),
    pytest.param([("e1", EXPERT, 30), ("g1", GENERAL, 30)], 0.3, 1.0, id="all-on-experts"),
    pytest.param([("e1", EXPERT, 10), ("g1", GENERAL, 30)], 0.5, 0.0, id="no-expert-minimum"),
    pytest.param(
        [
            ("a", EXPERT, 7),
            ("b", EXPERT, 3),
            ("c", GENERAL, 11),
            ("d", GENERAL, 13),
            ("e", SPECIAL, 5),
        ],
        0.3,
        0.5,
        id="uneven",
    ),
    pytest.param([("g1", GENERAL, 1), ("g2", GENERAL, 1), ("g3", GENERAL, 1)], 0.4, 0.5, id="ones"),
    pytest.param(
        [("e1", EXPERT, 1), ("g1", GENERAL, 1), ("g2", GENERAL, 1)], 0.7, 0.5, id="one-each"
    ),
    pytest.param([("e1", EXPERT, 12), ("g1", GENERAL, 8)], 1.0, 0.5, id="everything"),
    pytest.param([("e1", EXPERT, 12), ("g1", GENERAL, 8)], 0.0, 0.5, id="nothing"),
    pytest.param([("e1", EXPERT, 300), ("g1", GENERAL, 1)], 0.3, 0.5, id="one-big-expert"),
    pytest.param([("e1", EXPERT, 1), ("g1", GENERAL, 300)], 0.3, 0.9, id="one-small-expert"),
    pytest.param(
        [(f"g{i}", GENERAL, 3 + i) for i in range(12)] + [("e1", EXPERT, 9), ("e2", EXPERT, 4)],
        0.25,
        0.6,
        id="many",
    ),
]


@pytest.mark.parametrize(("schedules", "share", "expert_min_fraction"), ALLOCATION_SHAPES)
def test_referral_allocation_is_sound(
    schedules: Schedules, share: float, expert_min_fraction: float
) -> None:
    result = booking_rules.allocate_referral_slots(schedules, share, expert_min_fraction)
    assert_sound_allocation(schedules, share, expert_min_fraction, result)


def test_referral_total_is_the_rounded_share_of_all_slots() -> None:
    schedules = [("e1", EXPERT, 20), ("g1", GENERAL, 30), ("g2", GENERAL, 30)]  # 80 slots
    assert sum(booking_rules.allocate_referral_slots(schedules, 0.3, 0.5).values()) == 24
    assert sum(booking_rules.allocate_referral_slots(schedules, 0.33, 0.5).values()) == 26  # 26.4
    assert sum(booking_rules.allocate_referral_slots(schedules, 0.34, 0.5).values()) == 27  # 27.2
    assert sum(booking_rules.allocate_referral_slots(schedules, 0.345, 0.5).values()) == 28  # 27.6


def test_referral_minimum_goes_to_expert_schedules() -> None:
    schedules = [("e1", EXPERT, 20), ("g1", GENERAL, 30), ("g2", GENERAL, 30)]
    result = booking_rules.allocate_referral_slots(
        schedules, 0.3, 0.5
    )  # 24 wanted, >= 12 on experts
    assert result["e1"] >= 12
    assert result["g1"] == result["g2"]  # equal schedules are treated alike


def test_referral_minimum_rounds_up() -> None:
    schedules = [("e1", EXPERT, 30), ("g1", GENERAL, 70)]  # 100 slots, 25 wanted
    result = booking_rules.allocate_referral_slots(schedules, 0.25, 0.5)
    assert result["e1"] >= 13  # ceil(12.5)
    assert sum(result.values()) == 25


def test_odd_referral_total_gives_experts_the_larger_half() -> None:
    # 3 wanted: ceil(1.5) = 2 on the expert, the one left follows capacity to the general
    result = booking_rules.allocate_referral_slots(
        [("e1", EXPERT, 10), ("g1", GENERAL, 90)], 0.03, 0.5
    )
    assert result == {"e1": 2, "g1": 1}


def test_all_referrals_on_experts_when_the_fraction_is_one() -> None:
    result = booking_rules.allocate_referral_slots(
        [("e1", EXPERT, 30), ("g1", GENERAL, 30)], 0.3, 1.0
    )
    assert result == {"e1": 18, "g1": 0}


def test_expert_minimum_is_capped_by_expert_capacity() -> None:
    result = booking_rules.allocate_referral_slots(
        [("e1", EXPERT, 2), ("g1", GENERAL, 40)], 0.5, 0.5
    )
    assert result == {"e1": 2, "g1": 19}  # 21 wanted, 11 would be the expert minimum


def test_expert_minimum_spreads_over_several_expert_schedules() -> None:
    schedules = [("e1", EXPERT, 10), ("e2", EXPERT, 10), ("g1", GENERAL, 80)]
    result = booking_rules.allocate_referral_slots(
        schedules, 0.3, 0.5
    )  # 30 wanted, >= 15 on experts
    assert result["e1"] + result["e2"] >= 15
    assert abs(result["e1"] - result["e2"]) <= 1
    assert result["e1"] <= 10
    assert result["e2"] <= 10


def test_without_experts_referrals_spread_over_the_rest_in_proportion() -> None:
    result = booking_rules.allocate_referral_slots(
        [("g1", GENERAL, 20), ("g2", GENERAL, 10)], 0.3, 0.5
    )
    assert result == {"g1": 6, "g2": 3}
    result = booking_rules.allocate_referral_slots(
        [("g1", GENERAL, 25), ("g2", GENERAL, 17), ("s1", SPECIAL, 8)], 0.3, 0.5
    )
    assert result == {"g1": 8, "g2": 5, "s1": 2}  # 7.5, 5.1, 2.4 -> largest remainder wins


def test_without_expert_minimum_referrals_follow_capacity() -> None:
    result = booking_rules.allocate_referral_slots(
        [("e1", EXPERT, 10), ("g1", GENERAL, 30)], 0.5, 0.0
    )
    assert result == {"e1": 5, "g1": 15}


def test_full_share_fills_every_schedule_and_zero_share_none() -> None:
    schedules = [("e1", EXPERT, 12), ("g1", GENERAL, 8), ("s1", SPECIAL, 3)]
    assert booking_rules.allocate_referral_slots(schedules, 1.0, 0.5) == {
        "e1": 12,
        "g1": 8,
        "s1": 3,
    }
    assert booking_rules.allocate_referral_slots(schedules, 0.0, 0.5) == {"e1": 0, "g1": 0, "s1": 0}


def test_no_schedules_allocate_nothing() -> None:
    assert booking_rules.allocate_referral_slots([], 0.3, 0.5) == {}


# --- assign_pools ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "referral", "shares", "expected"),
    [
        (20, 6, PoolShares(), {Pool.REFERRAL: 6, Pool.HOTLINE: 2, Pool.ONSITE: 2, Pool.PUBLIC: 10}),
        (30, 9, PoolShares(), {Pool.REFERRAL: 9, Pool.HOTLINE: 3, Pool.ONSITE: 3, Pool.PUBLIC: 15}),
        (7, 2, PoolShares(), {Pool.REFERRAL: 2, Pool.HOTLINE: 1, Pool.ONSITE: 1, Pool.PUBLIC: 3}),
        (
            12,
            0,
            PoolShares(referral=0, hotline=0.25, onsite=0.25),
            {Pool.HOTLINE: 3, Pool.ONSITE: 3, Pool.PUBLIC: 6},
        ),
        (
            40,
            0,
            PoolShares(referral=0.3, hotline=0.16, onsite=0.04),
            {Pool.HOTLINE: 6, Pool.ONSITE: 2, Pool.PUBLIC: 32},  # 6.4 and 1.6 rounded
        ),
        (1, 0, PoolShares(), {Pool.PUBLIC: 1}),  # 0.1 of one slot rounds to none
        (50, 0, PoolShares(referral=0, hotline=0, onsite=0), {Pool.PUBLIC: 50}),
        (10, 10, PoolShares(), {Pool.REFERRAL: 10}),  # nothing left for hotline/onsite
        (5, 8, PoolShares(referral=0.3, hotline=0.3, onsite=0.3), {Pool.REFERRAL: 5}),
        (
            10,
            8,
            PoolShares(referral=0.3, hotline=0.3, onsite=0.3),
            {Pool.REFERRAL: 8, Pool.HOTLINE: 2},
        ),
    ],
)
def test_assign_pools_counts(
    count: int, referral: int, shares: PoolShares, expected: dict[Pool, int]
) -> None:
    pools = booking_rules.assign_pools(count, referral, shares)
    assert len(pools) == count
    assert Counter(pools) == Counter(expected)
    assert sum(1 for p in pools if p != Pool.PUBLIC) <= count


def test_assign_pools_of_an_empty_session() -> None:
    assert booking_rules.assign_pools(0, 0, PoolShares()) == []


@pytest.mark.parametrize(("count", "referral"), [(20, 6), (30, 9), (12, 4), (100, 30), (9, 3)])
def test_reserved_slots_are_spread_through_the_session(count: int, referral: int) -> None:
    pools = booking_rules.assign_pools(count, referral, PoolShares())
    for pool in (Pool.REFERRAL, Pool.HOTLINE, Pool.ONSITE):
        where = [i for i, p in enumerate(pools) if p == pool]
        if len(where) < 2:
            continue
        assert where != list(range(len(where))), f"{pool} bunched at the start"
        assert where[0] < count / 2 <= where[-1], f"{pool} not spread over both halves"
    # the referral pool is laid first: its slots are evenly strided through the session
    referral_at = [i for i, p in enumerate(pools) if p == Pool.REFERRAL]
    stride = count / referral
    gaps = {b - a for a, b in pairwise(referral_at)}
    assert gaps <= {math.floor(stride), math.ceil(stride)}
    assert pools[0] == Pool.PUBLIC  # 号序 1 stays public with the default shares


def test_reserved_slots_interleave_with_public_ones() -> None:
    pools = booking_rules.assign_pools(20, 6, PoolShares())
    longest_public_run = max(
        len(run) for run in "".join("p" if p == Pool.PUBLIC else "r" for p in pools).split("r")
    )
    assert longest_public_run <= 3
    assert Pool.PUBLIC in pools[:5]
    assert Pool.PUBLIC in pools[-5:]


# --- release -----------------------------------------------------------------------------

DERM_POLICY = BookingPolicy(
    department_release={"dermatology": ReleaseRule(days_ahead=10, at=time(8, 30))}
)


def test_release_is_seven_days_ahead_at_seven_local() -> None:
    opens = booking_rules.release_at(POLICY, CLINIC_DATE, DEPT)
    assert opens == datetime(2025, 3, 9, 23, 0, tzinfo=UTC)
    assert opens.astimezone(SHANGHAI).replace(tzinfo=None) == datetime(2025, 3, 10, 7, 0)


def test_release_follows_a_department_override() -> None:
    assert booking_rules.release_at(DERM_POLICY, CLINIC_DATE, "dermatology") == local(
        date(2025, 3, 7), 8, 30
    )
    assert booking_rules.release_at(DERM_POLICY, CLINIC_DATE, "dermatology") == datetime(
        2025, 3, 7, 0, 30, tzinfo=UTC
    )
    # other departments keep the hospital-wide rule
    assert booking_rules.release_at(DERM_POLICY, CLINIC_DATE, DEPT) == datetime(
        2025, 3, 9, 23, 0, tzinfo=UTC
    )


def test_release_over_a_month_boundary() -> None:
    assert booking_rules.release_at(POLICY, date(2025, 3, 3), DEPT) == local(date(2025, 2, 24), 7)


def test_referral_release_is_fourteen_days_ahead() -> None:
    opens = booking_rules.referral_release_at(POLICY, CLINIC_DATE, DEPT)
    assert opens == datetime(2025, 3, 2, 23, 0, tzinfo=UTC)  # 2025-03-03 07:00 local
    assert opens < booking_rules.release_at(POLICY, CLINIC_DATE, DEPT)


def test_referral_release_days_come_from_the_policy() -> None:
    policy = BookingPolicy(referral_release_days_ahead=10)
    assert booking_rules.referral_release_at(policy, CLINIC_DATE, DEPT) == local(
        date(2025, 3, 7), 7
    )


def test_referral_release_uses_the_departments_time_of_day() -> None:
    assert booking_rules.referral_release_at(DERM_POLICY, CLINIC_DATE, "dermatology") == local(
        date(2025, 3, 3), 8, 30
    )


def check(
    now: datetime,
    channel: Channel,
    pool: Pool,
    *,
    policy: BookingPolicy = POLICY,
    department: str = DEPT,
) -> None:
    booking_rules.check_released(
        policy,
        now=now,
        channel=channel,
        pool=pool,
        clinic_date=CLINIC_DATE,
        department_id=department,
    )


@pytest.mark.parametrize("channel", list(Channel))
def test_public_slots_refused_before_release(channel: Channel) -> None:
    opens = booking_rules.release_at(POLICY, CLINIC_DATE, DEPT)
    problem = refused(
        Conflict, "slot_not_released", 409, check, opens - SECOND, channel, Pool.PUBLIC
    )
    assert problem.extra["opens_at"] == "2025-03-09T23:00:00+00:00"
    assert problem.extra["opens_at"] == opens.isoformat()
    assert "2025-03-10 07:00" in (problem.detail_zh or "")  # the time the patient reads
    assert "23:00" not in (problem.detail_zh or "")


@pytest.mark.parametrize("channel", list(Channel))
def test_public_slots_open_at_and_after_release(channel: Channel) -> None:
    opens = booking_rules.release_at(POLICY, CLINIC_DATE, DEPT)
    check(opens, channel, Pool.PUBLIC)
    check(opens + timedelta(days=3), channel, Pool.PUBLIC)


@pytest.mark.parametrize(
    ("channel", "pool"), [(Channel.HOTLINE, Pool.HOTLINE), (Channel.ONSITE, Pool.ONSITE)]
)
def test_hotline_and_onsite_pools_open_with_the_public_release(
    channel: Channel, pool: Pool
) -> None:
    opens = booking_rules.release_at(POLICY, CLINIC_DATE, DEPT)
    refused(Conflict, "slot_not_released", 409, check, opens - SECOND, channel, pool)
    check(opens, channel, pool)


def test_referral_channel_books_referral_pool_between_fourteen_and_seven_days() -> None:
    ten_days_ahead = local(date(2025, 3, 7), 10)
    check(ten_days_ahead, Channel.REFERRAL, Pool.REFERRAL)
    check(local(date(2025, 3, 3), 7), Channel.REFERRAL, Pool.REFERRAL)  # the moment it opens


def test_referral_pool_refused_before_the_referral_release() -> None:
    just_before = local(date(2025, 3, 3), 6, 59)
    problem = refused(
        Conflict, "slot_not_released", 409, check, just_before, Channel.REFERRAL, Pool.REFERRAL
    )
    assert problem.extra["opens_at"] == "2025-03-02T23:00:00+00:00"
    assert "2025-03-03 07:00" in (problem.detail_zh or "")


def test_referral_channel_may_not_book_public_slots_early() -> None:
    ten_days_ahead = local(date(2025, 3, 7), 10)
    problem = refused(
        Conflict, "slot_not_released", 409, check, ten_days_ahead, Channel.REFERRAL, Pool.PUBLIC
    )
    assert problem.extra["opens_at"] == "2025-03-09T23:00:00+00:00"


@pytest.mark.parametrize("channel", [Channel.APP, Channel.HOTLINE, Channel.ONSITE])
def test_only_referrals_get_the_early_referral_release(channel: Channel) -> None:
    ten_days_ahead = local(date(2025, 3, 7), 10)
    problem = refused(
        Conflict, "slot_not_released", 409, check, ten_days_ahead, channel, Pool.REFERRAL
    )
    assert problem.extra["opens_at"] == "2025-03-09T23:00:00+00:00"


def test_check_released_follows_a_department_override() -> None:
    opens = local(date(2025, 3, 7), 8, 30)
    problem = refused(
        Conflict,
        "slot_not_released",
        409,
        check,
        opens - SECOND,
        Channel.APP,
        Pool.PUBLIC,
        policy=DERM_POLICY,
        department="dermatology",
    )
    assert problem.extra["opens_at"] == "2025-03-07T00:30:00+00:00"
    assert "2025-03-07 08:30" in (problem.detail_zh or "")
    check(opens, Channel.APP, Pool.PUBLIC, policy=DERM_POLICY, department="dermatology")


# --- open_pools --------------------------------------------------------------------------


def pools_open(now: datetime, channel: Channel) -> list[Pool]:
    return booking_rules.open_pools(
        POLICY, now=now, channel=channel, clinic_date=CLINIC_DATE, department_id=DEPT
    )


def test_open_pools_before_public_release_only_referrals_on_their_pool() -> None:
    ten_days_ahead = local(date(2025, 3, 7), 10)
    assert pools_open(ten_days_ahead, Channel.REFERRAL) == [Pool.REFERRAL]
    problem = refused(Conflict, "slot_not_released", 409, pools_open, ten_days_ahead, Channel.APP)
    assert problem.extra["opens_at"] == "2025-03-09T23:00:00+00:00"


def test_open_pools_before_any_release_says_when_referrals_open() -> None:
    problem = refused(
        Conflict, "slot_not_released", 409, pools_open, local(date(2025, 3, 1), 9), Channel.REFERRAL
    )
    assert problem.extra["opens_at"] == "2025-03-02T23:00:00+00:00"


@pytest.mark.parametrize("channel", list(Channel))
def test_open_pools_after_release_in_preference_order(channel: Channel) -> None:
    assert pools_open(local(date(2025, 3, 12), 9), channel) == list(CHANNEL_POOLS[channel])


# --- pools --------------------------------------------------------------------------------


def test_pool_return_is_twenty_four_hours_before_start() -> None:
    start = local(CLINIC_DATE, 8)
    assert booking_rules.pool_return_at(POLICY, start) == local(date(2025, 3, 16), 8)
    assert booking_rules.pool_return_at(BookingPolicy(pool_return_hours_before=48), start) == local(
        date(2025, 3, 15), 8
    )
    assert booking_rules.pool_return_at(BookingPolicy(pool_return_hours_before=0), start) == start


@pytest.mark.parametrize(
    ("channel", "pools"),
    [
        (Channel.APP, (Pool.PUBLIC,)),
        (Channel.HOTLINE, (Pool.HOTLINE, Pool.PUBLIC)),
        (Channel.ONSITE, (Pool.ONSITE, Pool.PUBLIC)),
        (Channel.REFERRAL, (Pool.REFERRAL, Pool.PUBLIC)),
    ],
)
def test_pools_for_each_channel(channel: Channel, pools: tuple[Pool, ...]) -> None:
    assert booking_rules.pools_for(channel) == pools


def test_no_channel_draws_on_another_channels_reserved_pool() -> None:
    own = {
        Channel.HOTLINE: Pool.HOTLINE,
        Channel.ONSITE: Pool.ONSITE,
        Channel.REFERRAL: Pool.REFERRAL,
    }
    for channel in Channel:
        reserved = set(booking_rules.pools_for(channel)) - {Pool.PUBLIC}
        assert reserved == ({own[channel]} if channel in own else set())


# --- check_not_started -------------------------------------------------------------------


def test_not_started_allows_booking_before_the_slot() -> None:
    start = local(CLINIC_DATE, 9)
    booking_rules.check_not_started(now=start - SECOND, starts_at=start)


@pytest.mark.parametrize("after", [timedelta(0), SECOND, timedelta(hours=3)])
def test_not_started_refuses_a_slot_that_has_begun(after: timedelta) -> None:
    start = local(CLINIC_DATE, 9)
    refused(
        Conflict,
        "slot_in_past",
        409,
        booking_rules.check_not_started,
        now=start + after,
        starts_at=start,
    )


# --- check_patient_limits ----------------------------------------------------------------


def limits(
    policy: BookingPolicy = POLICY,
    *,
    active: int = 0,
    department_day: int = 0,
    resource_session: int = 0,
    real_name_day: int = 0,
) -> None:
    booking_rules.check_patient_limits(
        policy,
        active_bookings=active,
        same_department_day=department_day,
        same_resource_session=resource_session,
        real_name_day=real_name_day,
    )


def test_limits_pass_just_below_every_default_limit() -> None:
    limits()
    limits(active=4, department_day=0, resource_session=0, real_name_day=2)


@pytest.mark.parametrize(
    ("code", "counts"),
    [
        ("duplicate_booking", {"resource_session": 1}),
        ("department_day_limit", {"department_day": 1}),
        ("active_booking_limit", {"active": 5}),
        ("real_name_day_limit", {"real_name_day": 3}),
        ("active_booking_limit", {"active": 9}),
    ],
)
def test_limits_refuse_at_each_default_limit(code: str, counts: dict[str, int]) -> None:
    refused(Conflict, code, 409, limits, **counts)


@pytest.mark.parametrize(
    ("field", "counter", "code"),
    [
        ("max_bookings_per_department_per_day", "department_day", "department_day_limit"),
        ("max_active_bookings_per_patient", "active", "active_booking_limit"),
        ("max_bookings_per_real_name_per_day", "real_name_day", "real_name_day_limit"),
    ],
)
@pytest.mark.parametrize("limit", [1, 2, 4])
def test_limits_boundary_follows_the_policy(
    field: str, counter: str, code: str, limit: int
) -> None:
    policy = BookingPolicy(**{field: limit})
    limits(policy, **{counter: limit - 1})
    refused(Conflict, code, 409, limits, policy, **{counter: limit})


def test_duplicate_booking_is_checked_first() -> None:
    refused(
        Conflict,
        "duplicate_booking",
        409,
        limits,
        active=5,
        department_day=1,
        resource_session=1,
        real_name_day=3,
    )


# --- ban_until ----------------------------------------------------------------------------

NOW = datetime(2025, 6, 1, 4, 0, tzinfo=UTC)
NO_SHOW = POLICY.no_show_penalty  # 3 within 90 days -> 90 days


def days_ago(*days: float) -> list[datetime]:
    return [NOW - timedelta(days=d) for d in days]


def test_three_no_shows_in_ninety_days_ban_until_the_last_plus_ninety() -> None:
    offences = days_ago(80, 40, 2)
    assert penalty_rules.ban_until(offences, NO_SHOW, NOW) == NOW - timedelta(days=2) + timedelta(
        days=90
    )


def test_ban_does_not_depend_on_offence_order() -> None:
    assert penalty_rules.ban_until(days_ago(2, 80, 40), NO_SHOW, NOW) == NOW + timedelta(days=88)


def test_more_offences_ban_from_the_latest() -> None:
    assert penalty_rules.ban_until(days_ago(85, 60, 30, 1), NO_SHOW, NOW) == NOW + timedelta(
        days=89
    )


@pytest.mark.parametrize("offences", [[], days_ago(1), days_ago(50, 2)])
def test_fewer_than_three_no_shows_do_not_ban(offences: list[datetime]) -> None:
    assert penalty_rules.ban_until(offences, NO_SHOW, NOW) is None


@pytest.mark.parametrize(
    "offences",
    [days_ago(200, 100, 1), days_ago(96, 50, 5), days_ago(300, 150, 95, 1)],
)
def test_offences_spread_wider_than_the_window_do_not_ban(offences: list[datetime]) -> None:
    assert penalty_rules.ban_until(offences, NO_SHOW, NOW) is None


def test_three_offences_exactly_a_window_apart_still_ban() -> None:
    assert penalty_rules.ban_until(days_ago(95, 50, 5), NO_SHOW, NOW) == NOW + timedelta(days=85)


def test_an_expired_ban_is_none() -> None:
    assert penalty_rules.ban_until(days_ago(300, 280, 260), NO_SHOW, NOW) is None
    # ended exactly now: no longer banned
    assert penalty_rules.ban_until(days_ago(120, 100, 90), NO_SHOW, NOW) is None


def test_an_older_ban_still_runs_with_fewer_recent_offences() -> None:
    offences = days_ago(150, 130, 80)  # only one in the last 90 days
    assert penalty_rules.ban_until(offences, NO_SHOW, NOW) == NOW + timedelta(days=10)


def test_the_latest_older_ban_counts() -> None:
    offences = days_ago(400, 390, 380, 160, 140, 85)  # two bans; the later ends in 5 days
    assert penalty_rules.ban_until(offences, NO_SHOW, NOW) == NOW + timedelta(days=5)


def test_late_cancellations_ban_for_thirty_days() -> None:
    rule = POLICY.late_cancel_penalty
    assert penalty_rules.ban_until(days_ago(20, 10, 1), rule, NOW) == NOW + timedelta(days=29)
    assert penalty_rules.ban_until(days_ago(35, 10, 1), rule, NOW) is None


def test_custom_penalty_rule() -> None:
    rule = PenaltyRule(threshold=1, window_days=30, ban_days=7)
    assert penalty_rules.ban_until(days_ago(3), rule, NOW) == NOW + timedelta(days=4)
    assert penalty_rules.ban_until(days_ago(8), rule, NOW) is None


# --- check_not_banned --------------------------------------------------------------------


@pytest.mark.parametrize("until", [None, NOW - timedelta(days=1), NOW])
def test_not_banned_passes(until: datetime | None) -> None:
    penalty_rules.check_not_banned(until, NOW, TZ)


def test_banned_patient_is_refused_with_the_end_of_the_ban() -> None:
    until = datetime(2025, 6, 30, 20, 0, tzinfo=UTC)  # 2025-07-01 04:00 in Shanghai
    problem = refused(
        Forbidden, "patient_banned", 403, penalty_rules.check_not_banned, until, NOW, TZ
    )
    assert problem.extra["banned_until"] == "2025-06-30T20:00:00+00:00"
    assert "2025-07-01" in (problem.detail_zh or "")  # the local date, not the UTC one


# --- cancellation ------------------------------------------------------------------------

START = local(CLINIC_DATE, 9)


def cancel(now: datetime, *, by_staff: bool = False, policy: BookingPolicy = POLICY) -> None:
    booking_rules.check_cancellable(policy, now=now, starts_at=START, by_staff=by_staff)


@pytest.mark.parametrize("by_staff", [False, True])
def test_cancel_well_ahead_is_allowed(by_staff: bool) -> None:
    cancel(START - timedelta(days=1), by_staff=by_staff)
    cancel(START - timedelta(minutes=121), by_staff=by_staff)


@pytest.mark.parametrize("by_staff", [False, True])
@pytest.mark.parametrize("after", [timedelta(0), timedelta(minutes=5)])
def test_cancel_after_start_is_too_late_for_everyone(by_staff: bool, after: timedelta) -> None:
    refused(Conflict, "cancel_too_late", 409, cancel, START + after, by_staff=by_staff)


@pytest.mark.parametrize("before", [timedelta(minutes=120), timedelta(minutes=119), SECOND])
def test_patients_may_not_cancel_inside_the_cutoff(before: timedelta) -> None:
    problem = refused(Conflict, "cancel_cutoff_passed", 409, cancel, START - before)
    assert "120" in (problem.detail_zh or "")


@pytest.mark.parametrize("before", [timedelta(minutes=119), SECOND])
def test_staff_may_cancel_inside_the_cutoff(before: timedelta) -> None:
    cancel(START - before, by_staff=True)


def test_cutoff_follows_the_policy() -> None:
    policy = BookingPolicy(cancel_cutoff_minutes=0)
    cancel(START - SECOND, policy=policy)
    refused(Conflict, "cancel_too_late", 409, cancel, START, policy=policy)


@pytest.mark.parametrize(
    ("before", "late"),
    [
        (timedelta(hours=25), False),
        (timedelta(hours=24), False),
        (timedelta(hours=24) - SECOND, True),
        (timedelta(hours=3), True),
    ],
)
def test_late_cancellation_is_inside_twenty_four_hours(before: timedelta, late: bool) -> None:
    assert booking_rules.is_late_cancellation(POLICY, now=START - before, starts_at=START) is late


# --- check-in ----------------------------------------------------------------------------

END = START + timedelta(minutes=15)


def test_checkin_window_opens_two_hours_before_and_closes_at_the_end() -> None:
    assert change_rules.checkin_window(POLICY, START, END) == (
        local(CLINIC_DATE, 7),
        local(CLINIC_DATE, 9, 15),
    )
    policy = BookingPolicy(checkin_opens_minutes_before=30, checkin_closes_minutes_before_end=5)
    assert change_rules.checkin_window(policy, START, END) == (
        local(CLINIC_DATE, 8, 30),
        local(CLINIC_DATE, 9, 10),
    )


def checkin(now: datetime) -> None:
    change_rules.check_checkin(POLICY, now=now, starts_at=START, ends_at=END)


def test_checkin_too_early_is_refused_with_the_opening_time() -> None:
    problem = refused(Conflict, "checkin_not_open", 409, checkin, local(CLINIC_DATE, 6, 59))
    assert problem.extra["opens_at"] == local(CLINIC_DATE, 7).isoformat()
    assert problem.extra["opens_at"] == "2025-03-16T23:00:00+00:00"


@pytest.mark.parametrize("after", [SECOND, timedelta(hours=2)])
def test_checkin_after_close_is_refused(after: timedelta) -> None:
    refused(Conflict, "checkin_closed", 409, checkin, END + after)


@pytest.mark.parametrize(
    "now",
    [local(CLINIC_DATE, 7), local(CLINIC_DATE, 8, 30), START, START + timedelta(minutes=10), END],
)
def test_checkin_inside_the_window_passes(now: datetime) -> None:
    checkin(now)


# --- waitlist ----------------------------------------------------------------------------


def test_waitlist_closes_at_eight_the_evening_before() -> None:
    closes = waitlist_rules.waitlist_closes_at(POLICY, CLINIC_DATE)
    assert closes == datetime(2025, 3, 16, 12, 0, tzinfo=UTC)
    assert closes.astimezone(SHANGHAI).replace(tzinfo=None) == datetime(2025, 3, 16, 20, 0)


def test_waitlist_close_over_a_month_boundary_and_custom_time() -> None:
    assert waitlist_rules.waitlist_closes_at(POLICY, date(2025, 3, 1)) == local(
        date(2025, 2, 28), 20
    )
    policy = BookingPolicy(waitlist_closes_at=time(18, 30))
    assert waitlist_rules.waitlist_closes_at(policy, CLINIC_DATE) == local(
        date(2025, 3, 16), 18, 30
    )


# --- policy validation -------------------------------------------------------------------


def test_default_policy_matches_the_booking_office_rules() -> None:
    assert POLICY.timezone == TZ
    assert (POLICY.release.days_ahead, POLICY.release.at) == (7, time(7, 0))
    assert POLICY.referral_release_days_ahead == 14
    assert POLICY.pool_return_hours_before == 24
    assert POLICY.cancel_cutoff_minutes == 120
    assert POLICY.late_cancel_window_hours == 24
    assert (POLICY.no_show_penalty.threshold, POLICY.no_show_penalty.window_days) == (3, 90)
    assert POLICY.no_show_penalty.ban_days == 90
    assert POLICY.waitlist_closes_at == time(20, 0)


def test_release_for_prefers_the_department_rule() -> None:
    assert DERM_POLICY.release_for("dermatology") == ReleaseRule(days_ahead=10, at=time(8, 30))
    assert DERM_POLICY.release_for(DEPT) == DERM_POLICY.release


@pytest.mark.parametrize(
    "shares",
    [
        {"referral": 0.5, "hotline": 0.3, "onsite": 0.3},
        {"referral": 0.9, "hotline": 0.1, "onsite": 0.1},
        {"referral": 1.0, "hotline": 0.01},
    ],
)
def test_pool_shares_adding_to_more_than_one_are_refused(shares: dict[str, float]) -> None:
    with pytest.raises(ValidationError, match="more than 1"):
        PoolShares(**shares)
    with pytest.raises(ValidationError):
        BookingPolicy(pool_shares=shares)  # type: ignore[arg-type]


def test_pool_shares_adding_to_exactly_one_are_allowed() -> None:
    shares = PoolShares(referral=0.5, hotline=0.25, onsite=0.25)
    assert shares.referral + shares.hotline + shares.onsite == 1


@pytest.mark.parametrize("bad", [{"referral": -0.1}, {"hotline": 1.5}])
def test_pool_shares_out_of_range_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        PoolShares(**bad)


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (PoolShares, {"walk_in": 0.1}),
        (BookingPolicy, {"max_bookings_per_day": 2}),
        (ReleaseRule, {"days": 7}),
        (PenaltyRule, {"fine_yuan": 50}),
    ],
)
def test_unknown_policy_fields_are_refused(model: type[Any], fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        model(**fields)


def test_unknown_nested_policy_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        BookingPolicy(release={"days_ahead": 7, "hour": 7})  # type: ignore[arg-type]


def test_policy_is_frozen() -> None:
    with pytest.raises(ValidationError):
        POLICY.cancel_cutoff_minutes = 0  # type: ignore[misc]
