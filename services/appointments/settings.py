"""Settings of the appointments service (environment prefix ``CARELOOP_APPOINTMENTS_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class AppointmentsSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CARELOOP_APPOINTMENTS_", extra="ignore", frozen=True
    )

    service_name: str = "appointments"
    http_port: int = 8101
