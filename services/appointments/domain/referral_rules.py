"""Referral booking rules (the appointments side of the referral saga): which dates an
ask may be booked on, which account the booking belongs to, which refusals pass on to
the next session. Pure: nothing here reads or writes anything."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from services.appointments.domain.booking_rules import clinic_date_of
from services.appointments.domain.policy import BookingPolicy

# refusals of one session: the next session of the department may still take the patient
SESSION_REFUSALS = frozenset(
    {
        "slot_sold_out",
        "slot_taken",
        "slot_not_in_pool",
        "slot_in_past",
        "slot_not_released",
        "schedule_cancelled",
        "duplicate_booking",
        "department_day_limit",
        "booking_in_progress",
    }
)
# what a booking refuses before it claims its slot (anything later is a failure)
CLAIM_REFUSALS = frozenset(
    {
        "patient_banned",
        "duplicate_booking",
        "department_day_limit",
        "active_booking_limit",
        "real_name_day_limit",
    }
)


def referral_dates(
    policy: BookingPolicy, now: datetime, preferred: date | None, earliest: date | None
) -> tuple[date, date]:
    """The first and last clinic date to look at: the preferred date alone, else from
    max(today, ``earliest``) to the referral horizon (today + referral_release_days_ahead).
    The first may come after the last: then there is none."""
    if preferred is not None:
        return preferred, preferred
    today = clinic_date_of(now, policy.timezone)
    horizon = today + timedelta(days=policy.referral_release_days_ahead)
    return max(today, earliest or today), horizon


def own_account(patient: Mapping[str, Any]) -> str:
    """The account a referral booking belongs to: the one the patient manages themselves
    from (relation "self"), else the account that linked them first, else none ("")."""
    accounts = [str(a) for a in patient.get("account_ids") or []]
    relations = patient.get("relations") or {}
    return next(
        (a for a in accounts if relations.get(a) == "self"), accounts[0] if accounts else ""
    )
