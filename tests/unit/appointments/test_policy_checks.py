"""A booking policy is checked when written; referral pools are rounded per session (no I/O)."""

from __future__ import annotations

from datetime import time
from typing import Any

import pytest
from pydantic import ValidationError

from services.appointments.domain import booking_rules
from services.appointments.domain.models import ClinicType
from services.appointments.domain.policy import (
    DEFAULT_POLICY,
    BookingPolicy,
    ReleaseRule,
    inconsistencies,
)

EXPERT, GENERAL = ClinicType.EXPERT, ClinicType.GENERAL


def fields_of(exc: pytest.ExceptionInfo[ValidationError]) -> set[str]:
    return {".".join(map(str, e["loc"])) for e in exc.value.errors()}


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../../etc/passwd", "/etc/localtime", " "])
def test_a_zone_the_database_does_not_have_is_refused(zone: str) -> None:
    with pytest.raises(ValidationError) as exc:
        BookingPolicy(timezone=zone)
    assert fields_of(exc) == {"timezone"}


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Asia/Urumqi", "UTC", "Europe/Berlin"])
def test_real_zones_are_accepted(zone: str) -> None:
    assert BookingPolicy(timezone=zone).timezone == zone


@pytest.mark.parametrize("at", ["07:00:30", "25:00", "7am", "07:00+08:00", "07:00:00.5"])
def test_a_release_time_is_a_whole_minute_of_the_day(at: str) -> None:
    with pytest.raises(ValidationError) as exc:
        BookingPolicy.model_validate({"release": {"at": at}})
    assert fields_of(exc) == {"release.at"}


@pytest.mark.parametrize(
    "shares",
    [
        {"referral": 1.5},
        {"referral": -0.1},
        {"referral": 0.6, "hotline": 0.3, "onsite": 0.2},
        {"referral": float("nan")},
    ],
)
def test_pool_shares_lie_in_zero_one_and_sum_to_at_most_one(shares: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        BookingPolicy.model_validate({"pool_shares": shares})


def test_the_default_policy_is_consistent() -> None:
    assert inconsistencies(DEFAULT_POLICY, "h1") == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"referral_release_days_ahead": 3}, "referral_release_days_ahead"),  # public: 7
        (
            {"department_release": {"h1.CARD": ReleaseRule(days_ahead=20)}},
            "referral_release_days_ahead",
        ),
        ({"department_release": {"h2.CARD": ReleaseRule()}}, "department_release"),
        ({"department_release": {"CARD": ReleaseRule()}}, "department_release"),
        ({"pool_return_hours_before": 24 * 9}, "pool_return_hours_before"),
        ({"late_cancel_window_hours": 1, "cancel_cutoff_minutes": 120}, "late_cancel_window_hours"),
    ],
)
def test_fields_that_contradict_each_other_are_named(change: dict[str, Any], field: str) -> None:
    policy = DEFAULT_POLICY.model_copy(update=change)
    assert field in {f for f, _ in inconsistencies(policy, "h1")}


def test_consistent_variations_pass() -> None:
    policy = DEFAULT_POLICY.model_copy(
        update={
            "department_release": {"h1.CARD": ReleaseRule(days_ahead=14, at=time(8, 30))},
            "late_cancel_window_hours": 0,  # no late-cancel penalty at all
            "cancel_cutoff_minutes": 240,
        }
    )
    assert inconsistencies(policy, "h1") == []


# --- referral pool: rounded per session -----------------------------------------------------


@pytest.mark.parametrize(
    ("count", "share", "expected"),
    [
        (20, 0.3, 6),
        (10, 0.35, 4),  # 3.5 as written (the float product is 3.4999…, round() gives 3)
        (5, 0.5, 3),  # 2.5 -> 3, where round() gives 2
        (25, 0.1, 3),  # 2.5 -> 3
        (7, 0.3, 2),  # 2.1
        (1, 0.3, 0),
        (300, 1.0, 300),
        (13, 0.0, 0),
    ],
)
def test_round_half_up(count: int, share: float, expected: int) -> None:
    assert booking_rules.round_half_up(count, share) == expected


@pytest.mark.parametrize("kind", [EXPERT, GENERAL, ClinicType.SPECIAL])
def test_a_sessions_referral_pool_depends_only_on_the_session(kind: ClinicType) -> None:
    assert booking_rules.referral_slots(kind, 20, 0.33, 0.5) == 7  # 6.6
    assert booking_rules.referral_slots(kind, 20, 0.325, 0.5) == 7  # 6.5, half up
    assert booking_rules.referral_slots(kind, 15, 0.3, 0.5) == 5  # 4.5, half up


def test_two_identical_sessions_get_identical_pools() -> None:
    # per batch, 40 x 0.33 = 13.2 -> 13 split 7 + 6; per session each gets round(6.6) = 7
    first = booking_rules.referral_slots(EXPERT, 20, 0.33, 0.5)
    second = booking_rules.referral_slots(EXPERT, 20, 0.33, 0.5)
    assert first == second == 7
