"""Per-organization booking policy, with the defaults a hospital starts from."""

from __future__ import annotations

import re
from datetime import time
from functools import cache
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.appointments.domain.models import ORG_ID, LocalTime

# Upper bounds far beyond any real setting: a larger number is a typo, and an unbounded int
# would overflow MongoDB's 64-bit integers (or a timedelta) instead of being a 422.
DAY_MINUTES = 24 * 60
WEEK_MINUTES = 7 * DAY_MINUTES
MONTH_HOURS = 31 * 24


DEPARTMENT_ID = re.compile(ORG_ID.removesuffix("$") + r"\.[A-Za-z0-9_-]{1,40}$")


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def known_timezone(value: str) -> str:
    """An IANA zone the zone database has (``ZoneInfo`` would fail on anything else)."""
    if value not in _zones():
        raise ValueError("not a time zone of the IANA database, e.g. Asia/Shanghai")
    return value


class PoolShares(BaseModel):
    """Share of each schedule's slots reserved per pool; the public pool gets the rest."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    referral: float = Field(0.30, ge=0, le=1)
    hotline: float = Field(0.10, ge=0, le=1)
    onsite: float = Field(0.10, ge=0, le=1)

    @model_validator(mode="after")
    def _fits(self) -> PoolShares:
        if self.referral + self.hotline + self.onsite > 1 + 1e-9:  # float sums, e.g. .33+.56+.11
            raise ValueError("reserved pool shares add up to more than 1")
        return self


class ReleaseRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    days_ahead: int = Field(7, ge=0, le=90)
    at: LocalTime = time(7, 0)

    @field_validator("at")
    @classmethod
    def _minute(cls, value: time) -> time:
        if value.second or value.microsecond:
            raise ValueError("a release time is a whole minute, HH:MM")
        return value


class PenaltyRule(BaseModel):
    """``threshold`` offences within ``window_days`` ban booking for ``ban_days``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: int = Field(3, ge=1, le=100)
    window_days: int = Field(90, ge=1, le=3650)
    ban_days: int = Field(90, ge=1, le=3650)


class BookingPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    timezone: str = "Asia/Shanghai"
    release: ReleaseRule = ReleaseRule()
    department_release: dict[str, ReleaseRule] = Field(default_factory=dict)
    referral_release_days_ahead: int = Field(14, ge=0, le=90)
    pool_shares: PoolShares = PoolShares()
    referral_expert_min_fraction: float = Field(0.5, ge=0, le=1)
    pool_return_hours_before: int = Field(24, ge=0, le=MONTH_HOURS)

    max_active_bookings_per_patient: int = Field(5, ge=1, le=100)
    max_bookings_per_department_per_day: int = Field(1, ge=1, le=100)
    max_bookings_per_real_name_per_day: int = Field(3, ge=1, le=100)
    max_patients_per_account: int = Field(6, ge=1, le=20)

    cancel_cutoff_minutes: int = Field(120, ge=0, le=WEEK_MINUTES)
    late_cancel_window_hours: int = Field(24, ge=0, le=MONTH_HOURS)
    no_show_penalty: PenaltyRule = PenaltyRule()
    late_cancel_penalty: PenaltyRule = PenaltyRule(threshold=3, window_days=30, ban_days=30)

    checkin_opens_minutes_before: int = Field(120, ge=0, le=DAY_MINUTES)
    checkin_closes_minutes_before_end: int = Field(0, ge=0, le=DAY_MINUTES)

    waitlist_offer_minutes: int = Field(15, ge=1, le=DAY_MINUTES)
    waitlist_closes_at: LocalTime = time(20, 0)  # on the evening before the session
    waitlist_max_entries_per_patient: int = Field(3, ge=1, le=100)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return known_timezone(value)

    def release_for(self, department_id: str) -> ReleaseRule:
        return self.department_release.get(department_id, self.release)


def inconsistencies(policy: BookingPolicy, org_id: str) -> list[tuple[str, str]]:
    """Why ``policy`` cannot be applied to ``org_id``: (field, message) pairs, none if fine.

    Each field is valid on its own (the model checks that); these are the rules between
    fields, and between the policy and the organization it is for.
    """
    out: list[tuple[str, str]] = []
    releases = {"release": policy.release} | {
        f"department_release.{dep}": rule for dep, rule in policy.department_release.items()
    }
    for name, rule in releases.items():
        if policy.referral_release_days_ahead < rule.days_ahead:
            out.append(
                (
                    "referral_release_days_ahead",
                    f"the referral pool opens before the public one: at least "
                    f"{rule.days_ahead} days ahead ({name})",
                )
            )
    foreign = sorted(
        d
        for d in policy.department_release
        if not (DEPARTMENT_ID.match(d) and d.startswith(f"{org_id}."))
    )
    if foreign:
        out.append(
            (
                "department_release",
                f"not department ids of {org_id} (e.g. {org_id}.CARD): {foreign[:3]}",
            )
        )
    if policy.pool_return_hours_before > (policy.release.days_ahead + 1) * 24 and any(
        (policy.pool_shares.referral, policy.pool_shares.hotline, policy.pool_shares.onsite)
    ):
        out.append(
            (
                "pool_return_hours_before",
                "reserved numbers would return to the public pool before booking opens",
            )
        )
    if policy.late_cancel_window_hours * 60 < policy.cancel_cutoff_minutes and (
        policy.late_cancel_window_hours > 0
    ):
        out.append(
            (
                "late_cancel_window_hours",
                "the late-cancellation window ends before the cancel cut-off: "
                "no cancellation could ever be late",
            )
        )
    return out


DEFAULT_POLICY = BookingPolicy()
