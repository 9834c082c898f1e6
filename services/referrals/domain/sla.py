"""When a receiver's acceptance deadline falls (pure rules).

The deadline is the urgency's minutes (emergency 30, urgent 120, routine 1440 by default;
the receiving organization may override them) counted from when the clock starts. An
emergency's clock starts at once. A routine or urgent case offered outside the receiver's
intake hours starts its clock when the receiver next opens: a case sent at 23:00 is due
in the morning, not while the referral office is empty.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.referrals.domain.directory import IntakeSettings, Urgency


def clock_starts(now: datetime, intake: IntakeSettings, urgency: Urgency) -> datetime:
    if urgency is Urgency.EMERGENCY:
        return now
    local = now.astimezone(intake.zone)
    if intake.opens <= local.time() < intake.closes:
        return now
    day = local.date() if local.time() < intake.opens else local.date() + timedelta(days=1)
    return datetime.combine(day, intake.opens, tzinfo=intake.zone).astimezone(UTC)


def deadline(now: datetime, intake: IntakeSettings, urgency: Urgency, minutes: float) -> datetime:
    return clock_starts(now, intake, urgency) + timedelta(minutes=minutes)
