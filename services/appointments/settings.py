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


class AdmissionSettings(BaseModel):
    """Release-time admission (docs/adr/0004): leases, the waiting room, the Redis caches."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # an admission not settled by then is reconciled against Mongo (sooner if its replica died)
    lease_seconds: float = Field(15.0, gt=0, le=300)
    # admissions in flight per session before requests wait in the room (0: no waiting room)
    waiting_room_capacity: int = Field(32, ge=0, le=10_000)
    ticket_idle_seconds: float = Field(30.0, gt=0, le=600)  # unpolled tickets expire
    ticket_ttl_seconds: int = Field(900, ge=60, le=86_400)  # results kept for pick-up
    cache_ttl_seconds: int = Field(3600, ge=1, le=86_400)  # patients and schedules in Redis
    reconcile_interval_seconds: float = Field(1.0, gt=0, le=60)


class AppointmentsSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CARELOOP_APPOINTMENTS_", extra="ignore", frozen=True
    )

    service_name: str = "appointments"
    http_port: int = 8101
    booking_attempts: BookingAttemptLimits = BookingAttemptLimits()
    admission: AdmissionSettings = AdmissionSettings()
