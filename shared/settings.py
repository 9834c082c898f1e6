"""Settings shared by every service; each service subclasses with its own env prefix.

Nothing here connects to anything: clients are built in the app factory's lifespan.
Environment variables are named ``CARELOOP_<SERVICE>_<FIELD>``, for example
``CARELOOP_APPOINTMENTS_MONGO_URL``.

With ``environment=production`` a service refuses to start on a configuration that is only
fit for development (:meth:`ServiceSettings.production_problems`): development keys (the
devstack's, recognisable by their marks below), and what each service adds (the sandbox
providers, a gateway without trusted proxies). Errors never echo the input (secrets).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.crypto import split_hash_key_label

# Marks of development keys (devstack/keys.py makes them so; production refuses them):
# PII encryption key ids like dev1 or test1, a hash key labelled "dev:", and PEM files
# holding this line before the key.
DEV_KEY_ID = re.compile(r"(dev|test)[-_]?\d*", re.IGNORECASE)
DEV_HASH_KEY_LABEL = "dev"
DEV_PEM_MARKER = "careloop-development-key: never use in production"
DEV_PASSWORD_PREFIX = "Dev-"  # noqa: S105 (a mark, not a password): devstack's first admin
PRODUCTION_NAMES = frozenset({"production", "prod"})


def is_dev_pem(pem: str, path: str = "") -> bool:
    """True if the PEM (or the file at ``path``, when readable) carries the dev mark."""
    if not pem and path:
        try:
            pem = Path(path).read_text(errors="replace")
        except OSError:
            return False  # the key loader reports a missing file
    return DEV_PEM_MARKER in pem


class ProductionConfigError(ValueError):
    """The settings are not fit for production; the message names each problem."""


class ServiceSettings(BaseSettings):
    """Infrastructure and platform settings common to all services."""

    # hide_input_in_errors: a validation error must not print the settings (secrets)
    model_config = SettingsConfigDict(
        env_prefix="CARELOOP_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    service_name: str = "service"
    environment: str = "dev"  # "production" turns on the production guards
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
    # where the gateway keeps logouts and ended logins (shared/revocation.py): every
    # service refuses those tokens too. Empty: redis_url; None: redis_key_prefix.
    auth_redis_url: str = ""
    auth_redis_key_prefix: str | None = None
    # a token's answer is remembered this long (0: never), for at most this many tokens
    auth_revocation_cache_seconds: float = Field(2.0, ge=0, le=30)
    auth_revocation_cache_size: int = Field(10_000, ge=1, le=1_000_000)

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
    def is_production(self) -> bool:
        return self.environment.strip().lower() in PRODUCTION_NAMES

    def production_problems(self) -> list[str]:
        """What makes these settings unfit for production (each service adds its own)."""
        problems: list[str] = []
        for entry in self.pii_encryption_keys.split(","):
            kid = entry.partition(":")[0].strip() if ":" in entry else ""
            if DEV_KEY_ID.fullmatch(kid):
                problems.append(
                    f"pii_encryption_keys holds the development key {kid!r} (key ids like "
                    "dev1 and test1 are for development and tests)"
                )
        if split_hash_key_label(self.pii_hash_key)[0].lower() == DEV_HASH_KEY_LABEL:
            problems.append("pii_hash_key is a development key (labelled 'dev:')")
        if is_dev_pem(self.jwt_public_key, self.jwt_public_key_file):
            problems.append("jwt_public_key is the development key pair's (devstack)")
        return problems

    @model_validator(mode="after")
    def _refuse_development_config_in_production(self) -> ServiceSettings:
        if self.is_production and (problems := self.production_problems()):
            raise ProductionConfigError(
                f"environment=production refuses to start {self.service_name}: "
                + "; ".join(problems)
            )
        return self

    @property
    def database_name(self) -> str:
        return self.mongo_db or f"careloop_{self.service_name}"

    @property
    def own_topic(self) -> str:
        return f"{self.kafka_topic_prefix}.{self.service_name}"
