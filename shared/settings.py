"""Settings shared by every service; each service subclasses with its own env prefix.

Nothing here connects to anything: clients are built in the app factory's lifespan.
Environment variables are named ``CARELOOP_<SERVICE>_<FIELD>``, for example
``CARELOOP_APPOINTMENTS_MONGO_URL``.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Infrastructure and platform settings common to all services."""

    model_config = SettingsConfigDict(env_prefix="CARELOOP_", extra="ignore", frozen=True)

    service_name: str = "service"
    environment: str = "dev"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"
    log_json: bool = True

    mongo_url: str = "mongodb://127.0.0.1:27017"
    mongo_db: str = ""  # defaults to "careloop_<service_name>"

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_topic_prefix: str = "careloop"
    kafka_group_prefix: str = ""  # before consumer group ids; tests give each run its own
    # a consumer that stops heartbeating this long leaves its group; a new member's first
    # join takes about half of it on Tansu (tests shorten it)
    kafka_session_timeout_ms: int = Field(10_000, ge=1000, le=300_000)
    kafka_heartbeat_interval_ms: int = Field(1000, ge=100, le=60_000)
    kafka_partitions: int = 6
    kafka_replication_factor: int = 1
    kafka_idempotent_producer: bool = False  # Tansu cannot InitProducerId (docs/architecture.md §3)
    consumer_max_attempts: int = 5
    consumer_retry_base_seconds: float = 0.2
    consumer_retry_max_seconds: float = 5.0

    outbox_batch_size: int = 200
    outbox_poll_seconds: float = 0.5
    outbox_backoff_max_seconds: float = 10.0

    jobs_poll_seconds: float = 0.5
    jobs_lease_seconds: float = 30.0
    jobs_max_attempts: int = 8

    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_key_prefix: str = ""

    jwt_public_key: str = ""  # PEM; or a path in jwt_public_key_file
    jwt_public_key_file: str = ""
    jwt_issuer: str = "careloop-gateway"
    jwt_audience: str = "careloop"
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["EdDSA", "RS256", "ES256"])

    # privacy: base64url 32-byte keys; "kid:key,kid:key" — the first is used to encrypt
    pii_encryption_keys: str = ""
    pii_hash_key: str = ""

    hospital_timezone: str = "Asia/Shanghai"

    @property
    def database_name(self) -> str:
        return self.mongo_db or f"careloop_{self.service_name}"

    @property
    def own_topic(self) -> str:
        return f"{self.kafka_topic_prefix}.{self.service_name}"
