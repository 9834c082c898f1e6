"""Gateway settings (environment prefix ``CARELOOP_GATEWAY_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


def _default_urls() -> dict[str, str]:
    ports = {"appointments": 8101, "referrals": 8102, "notifications": 8103, "followup": 8104}
    return {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CARELOOP_GATEWAY_", extra="ignore", frozen=True)

    service_name: str = "gateway"
    http_port: int = 8080
    service_urls: dict[str, str] = Field(default_factory=_default_urls)
    upstream_timeout_seconds: float = 10.0
    upstream_connect_timeout_seconds: float = 1.0
    idempotent_retries: int = 2
    jwt_private_key_file: str = ""
