"""Waitlist (候补) rules: when the line is open, who may join, what an offer looks like.

Times are UTC; the hospital reads Asia/Shanghai (UTC+8), so 20:00 local is 12:00 UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from services.appointments.domain import waitlist_rules
from services.appointments.domain.errors import Conflict
from services.appointments.domain.models import Channel, Pool
from services.appointments.domain.policy import DEFAULT_POLICY, BookingPolicy
from services.appointments.waitlist import EntryStatus, becomes, entry_view, not_confirmable

pytestmark = pytest.mark.unit

CLINIC_DATE = date(2025, 3, 17)
CLOSES = datetime(2025, 3, 16, 12, 0, tzinfo=UTC)  # 20:00 in Shanghai the evening before
SECOND = timedelta(seconds=1)


def test_the_line_closes_at_eight_the_evening_before_in_the_hospitals_zone() -> None:
    assert waitlist_rules.waitlist_closes_at(DEFAULT_POLICY, CLINIC_DATE) == CLOSES
    waitlist_rules.check_waitlist_open(DEFAULT_POLICY, now=CLOSES - SECOND, clinic_date=CLINIC_DATE)
    with pytest.raises(Conflict) as refused:
        waitlist_rules.check_waitlist_open(DEFAULT_POLICY, now=CLOSES, clinic_date=CLINIC_DATE)
    assert refused.value.code == "waitlist_closed"
    assert refused.value.extra["closes_at"] == CLOSES.isoformat()
    assert "2025-03-16 20:00" in (refused.value.detail_zh or "")


def test_a_policy_moves_the_closing_time() -> None:
    policy = BookingPolicy(waitlist_closes_at=time(18, 30))
    closes = waitlist_rules.waitlist_closes_at(policy, CLINIC_DATE)
    assert closes == datetime(2025, 3, 16, 10, 30, tzinfo=UTC)
    with pytest.raises(Conflict):
        waitlist_rules.check_waitlist_open(policy, now=closes + SECOND, clinic_date=CLINIC_DATE)


@pytest.mark.parametrize(
    ("remaining", "pools", "left"),
    [
        ({"public": 1, "referral": 0}, [Pool.PUBLIC], 1),
        ({"public": 0, "hotline": 2}, [Pool.HOTLINE, Pool.PUBLIC], 2),
    ],
)
def test_joining_is_refused_while_the_callers_pools_have_slots(
    remaining: dict[str, int], pools: list[Pool], left: int
) -> None:
    with pytest.raises(Conflict) as refused:
        waitlist_rules.check_no_bookable_slot(remaining, pools)
    assert refused.value.code == "slots_available"
    assert refused.value.extra["remaining"] == left


def test_slots_in_pools_the_caller_cannot_use_do_not_count() -> None:
    waitlist_rules.check_no_bookable_slot({"public": 0, "referral": 3, "onsite": 1}, [Pool.PUBLIC])
    waitlist_rules.check_no_bookable_slot({}, [Pool.PUBLIC])


def test_a_patient_waits_for_a_limited_number_of_sessions() -> None:
    limit = DEFAULT_POLICY.waitlist_max_entries_per_patient
    waitlist_rules.check_waitlist_limit(DEFAULT_POLICY, active_entries=limit - 1)
    with pytest.raises(Conflict) as refused:
        waitlist_rules.check_waitlist_limit(DEFAULT_POLICY, active_entries=limit)
    assert refused.value.code == "waitlist_limit"
    assert refused.value.extra["limit"] == limit


def test_an_offer_lasts_the_policys_minutes() -> None:
    now = datetime(2025, 3, 10, 1, 0, tzinfo=UTC)
    assert waitlist_rules.waitlist_offer_expires_at(DEFAULT_POLICY, now) == now + timedelta(
        minutes=15
    )
    quick = BookingPolicy(waitlist_offer_minutes=5)
    assert waitlist_rules.waitlist_offer_expires_at(quick, now) == now + timedelta(minutes=5)


def test_a_freed_slot_goes_only_to_channels_that_may_book_its_pool() -> None:
    assert set(waitlist_rules.waitlist_channels_for(Pool.PUBLIC)) == set(Channel)
    assert waitlist_rules.waitlist_channels_for(Pool.HOTLINE) == [Channel.HOTLINE]
    assert waitlist_rules.waitlist_channels_for(Pool.REFERRAL) == [Channel.REFERRAL]


def test_slots_are_offered_only_while_the_line_is_open_and_the_slot_ahead() -> None:
    starts = datetime(2025, 3, 17, 0, 0, tzinfo=UTC)

    def may(now: datetime, slot_starts_at: datetime = starts) -> bool:
        return waitlist_rules.may_offer_waitlist(
            DEFAULT_POLICY, now=now, clinic_date=CLINIC_DATE, slot_starts_at=slot_starts_at
        )

    assert may(CLOSES - SECOND)
    assert not may(CLOSES)
    assert not may(CLOSES - SECOND, slot_starts_at=CLOSES - SECOND)


def entry(status: EntryStatus, **fields: Any) -> dict[str, Any]:
    base = {
        "_id": "w1",
        "patient_id": "p1",
        "schedule_id": "h1.D1.2025-03-17.morning",
        "org_id": "h1",
        "department_id": "h1.CARD",
        "department_name": "心内科",
        "resource_id": "h1.D1",
        "resource_name": "王医生",
        "clinic_date": "2025-03-17",
        "session": "morning",
        "channel": "app",
        "status": status.value,
        "joined_at": datetime(2025, 3, 10, 1, 0, tzinfo=UTC),
        "closes_at": CLOSES,
    }
    return {**base, **fields}


def test_an_offer_shows_its_held_slot_in_local_time_until_it_ends() -> None:
    expires = datetime(2025, 3, 10, 2, 15, tzinfo=UTC)
    offer = {"slot_id": "s3", "number": 3, "starts_at": datetime(2025, 3, 17, 0, 30, tzinfo=UTC)}
    view = entry_view(
        entry(EntryStatus.OFFERED, offer=offer, offer_expires_at=expires), None, "Asia/Shanghai"
    )
    assert view["slot"] == {
        "id": "s3",
        "number": 3,
        "starts_at": "2025-03-17T00:30:00+00:00",
        "starts_local": "2025-03-17T08:30:00+08:00",
    }
    assert view["offer_expires_at"] == expires.isoformat()
    expired = entry(EntryStatus.EXPIRED, offer=offer, offer_expires_at=expires)
    assert entry_view(expired, None, "Asia/Shanghai")["slot"] is None


def test_why_an_offer_cannot_be_confirmed() -> None:
    now = datetime(2025, 3, 10, 2, 0, tzinfo=UTC)
    lapsed = entry(EntryStatus.OFFERED, offer_expires_at=now)
    assert not_confirmable(lapsed, now).code == "offer_expired"
    assert not_confirmable(entry(EntryStatus.EXPIRED), now).code == "offer_expired"
    assert not_confirmable(entry(EntryStatus.WAITING), now).code == "no_offer"
    booked = not_confirmable(entry(EntryStatus.BOOKED, appointment_id="a1"), now)
    assert (booked.code, booked.extra["appointment_id"]) == ("waitlist_entry_inactive", "a1")
    assert not_confirmable(entry(EntryStatus.LEFT), now).detail_zh


def test_only_waiting_and_offered_entries_hold_a_place() -> None:
    assert becomes(EntryStatus.OFFERED)["$set"]["active"] is True
    for status in (EntryStatus.BOOKED, EntryStatus.EXPIRED, EntryStatus.LEFT, EntryStatus.CLOSED):
        update = becomes(status, at=1)
        assert update["$set"] == {"status": status.value, "active": False, "at": 1}
        assert update["$inc"] == {"version": 1}
