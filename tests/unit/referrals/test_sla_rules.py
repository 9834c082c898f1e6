"""The acceptance deadline's clock: at once for emergencies, else from the intake hours."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from services.referrals.domain.directory import IntakeSettings, Urgency
from services.referrals.domain.sla import clock_starts, deadline

pytestmark = pytest.mark.unit
INTAKE = IntakeSettings(hours_start="08:00", hours_end="17:30", timezone="Asia/Shanghai")


def beijing(day: int, hour: int, minute: int = 0) -> datetime:
    """2026-12-<day> hh:mm in Beijing, as UTC."""
    return datetime(2026, 12, day, hour, minute, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)


def test_within_intake_hours_the_clock_starts_at_once() -> None:
    now = beijing(2, 10)
    assert clock_starts(now, INTAKE, Urgency.ROUTINE) == now
    assert deadline(now, INTAKE, Urgency.URGENT, 120) == beijing(2, 12)


def test_at_night_the_clock_starts_when_the_referral_office_opens() -> None:
    assert clock_starts(beijing(2, 23), INTAKE, Urgency.URGENT) == beijing(3, 8)
    assert clock_starts(beijing(3, 6), INTAKE, Urgency.ROUTINE) == beijing(3, 8)
    assert clock_starts(beijing(2, 17, 30), INTAKE, Urgency.URGENT) == beijing(3, 8)
    assert deadline(beijing(2, 23), INTAKE, Urgency.URGENT, 120) == beijing(3, 10)


def test_an_emergency_never_waits_for_the_office() -> None:
    now = beijing(2, 23)
    assert deadline(now, INTAKE, Urgency.EMERGENCY, 30) == beijing(2, 23, 30)
