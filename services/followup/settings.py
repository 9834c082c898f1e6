"""Settings of the followup service (environment prefix ``CARELOOP_FOLLOWUP_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class FollowupSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CARELOOP_FOLLOWUP_", extra="ignore", frozen=True)

    service_name: str = "followup"
    http_port: int = 8104
