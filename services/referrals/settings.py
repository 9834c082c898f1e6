"""Settings of the referrals service (environment prefix ``CARELOOP_REFERRALS_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ReferralsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CARELOOP_REFERRALS_", extra="ignore", frozen=True)

    service_name: str = "referrals"
    http_port: int = 8102
