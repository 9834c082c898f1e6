"""Settings of the appointments service (environment prefix ``CARELOOP_APPOINTMENTS_``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class BookingAttemptLimits(BaseModel):
    """Booking attempts per real-name patient (national ID) and per account (anti-scalping).

    Counted by the shared GCRA limiter (a burst of N, then one per window / N); see
    ``services/appointments/attempt_limits.py``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    per_national_id: int = Field(20, ge=1)
    per_account: int = Field(30, ge=1)
    window_seconds: int = Field(600, ge=1, le=86_400)


class AppointmentsSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CARELOOP_APPOINTMENTS_", extra="ignore", frozen=True
    )

    service_name: str = "appointments"
    http_port: int = 8101
    booking_attempts: BookingAttemptLimits = BookingAttemptLimits()
