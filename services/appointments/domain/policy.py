"""Per-organization booking policy, with the defaults a hospital starts from."""

from __future__ import annotations

from datetime import time

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.appointments.domain.models import LocalTime

# Upper bounds far beyond any real setting: a larger number is a typo, and an unbounded int
# would overflow MongoDB's 64-bit integers (or a timedelta) instead of being a 422.
DAY_MINUTES = 24 * 60
WEEK_MINUTES = 7 * DAY_MINUTES
MONTH_HOURS = 31 * 24


class PoolShares(BaseModel):
    """Share of each schedule's slots reserved per pool; the public pool gets the rest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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


class PenaltyRule(BaseModel):
    """``threshold`` offences within ``window_days`` ban booking for ``ban_days``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: int = Field(3, ge=1, le=100)
    window_days: int = Field(90, ge=1, le=3650)
    ban_days: int = Field(90, ge=1, le=3650)


class BookingPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

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

    def release_for(self, department_id: str) -> ReleaseRule:
        return self.department_release.get(department_id, self.release)


DEFAULT_POLICY = BookingPolicy()
