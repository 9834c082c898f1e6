"""Settings of the notifications service (environment prefix ``CARELOOP_NOTIFICATIONS_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CARELOOP_NOTIFICATIONS_", extra="ignore", frozen=True
    )

    service_name: str = "notifications"
    http_port: int = 8103
