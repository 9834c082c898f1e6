"""Referral booking rules: the dates an ask looks at and the account a booking is for."""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.appointments.domain.policy import BookingPolicy
from services.appointments.domain.referral_rules import own_account, referral_dates

POLICY = BookingPolicy(referral_release_days_ahead=14)  # Asia/Shanghai
NOW = datetime(2025, 3, 16, 18, 0, tzinfo=UTC)  # 2025-03-17 02:00 in Shanghai


def test_a_preferred_date_is_the_only_date() -> None:
    day = date(2025, 3, 20)
    assert referral_dates(POLICY, NOW, day, date(2025, 3, 25)) == (day, day)


def test_without_one_the_dates_run_from_the_earliest_or_today_to_the_horizon() -> None:
    today, horizon = date(2025, 3, 17), date(2025, 3, 31)  # the clinic's today, not UTC's
    assert referral_dates(POLICY, NOW, None, None) == (today, horizon)
    assert referral_dates(POLICY, NOW, None, date(2025, 3, 1)) == (today, horizon)
    assert referral_dates(POLICY, NOW, None, date(2025, 3, 20)) == (date(2025, 3, 20), horizon)
    first, last = referral_dates(POLICY, NOW, None, date(2025, 4, 20))
    assert first > last  # beyond the horizon: no date at all


def test_the_booking_belongs_to_the_patients_own_account_else_the_first() -> None:
    family = {"account_ids": ["parent", "self-acct"], "relations": {"parent": "child"}}
    assert own_account(family) == "parent"
    family["relations"] = {"parent": "child", "self-acct": "self"}
    assert own_account(family) == "self-acct"
    assert own_account({"account_ids": []}) == ""
