"""Gateway settings (environment prefix ``CARELOOP_GATEWAY_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.gateway.traffic import RateLimitSettings
from shared.settings import DEV_PASSWORD_PREFIX, ServiceSettings, is_dev_pem


def _default_urls() -> dict[str, str]:
    ports = {"appointments": 8101, "referrals": 8102, "notifications": 8103, "followup": 8104}
    return {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CARELOOP_GATEWAY_", extra="ignore", frozen=True)

    service_name: str = "gateway"
    http_port: int = 8080
    service_urls: dict[str, str] = Field(default_factory=_default_urls)
    upstream_timeout_seconds: float = Field(10.0, gt=0)  # for an answer, and to read it whole
    upstream_connect_timeout_seconds: float = Field(1.0, gt=0)
    # exchanges with the services at once (event streams aside), on kept-alive
    # connections: a surge waits its turn in the gateway instead of opening hundreds of
    # connections at once (a service's accept queue overflows) or piling into the HTTP
    # client's pool (whose bookkeeping grows with requests x connections)
    upstream_max_connections: int = Field(32, ge=1, le=10_000)
    # waiting longer than this for a turn is a 429 overloaded (nothing was sent)
    upstream_pool_wait_seconds: float = Field(2.0, gt=0, le=60)
    # an event stream (the inbox) may be silent this long between chunks; null: no limit.
    # Keep it well above the services' heartbeats (notifications: 10 s).
    stream_idle_timeout_seconds: float | None = Field(60.0, gt=0)
    max_upstream_response_bytes: int = Field(32 * 1024 * 1024, ge=1024)  # other than streams
    # /v1/auth/me asks notifications whether WeChat messages reach the account
    account_lookup_timeout_seconds: float = Field(1.0, gt=0, le=10)
    idempotent_retries: int = 2

    # signing: the private half of the key pair every service verifies with
    jwt_private_key: str = ""  # PEM; or a path in jwt_private_key_file
    jwt_private_key_file: str = ""
    jwt_key_id: str = ""
    access_token_ttl_seconds: int = Field(600, ge=60, le=3600)
    patient_refresh_ttl_days: int = Field(30, ge=1, le=90)
    staff_refresh_ttl_hours: int = Field(12, ge=1, le=72)

    # patients: phone number + one-time code sent by SMS (through notifications)
    otp_length: int = Field(6, ge=4, le=8)
    otp_ttl_seconds: int = Field(300, ge=60, le=1800)
    otp_max_attempts: int = Field(5, ge=1, le=10)
    otp_resend_seconds: int = Field(60, ge=0)
    otp_daily_limit: int = Field(10, ge=1)

    # patients: the mini-program's wx.login code (off unless app id and secret are set)
    wechat_appid: str = ""
    wechat_secret: str = ""
    wechat_api_base: str = "https://api.weixin.qq.com"

    # staff: username + password (argon2id); locked after repeated failures
    staff_max_failed_logins: int = Field(5, ge=1)
    staff_lockout_minutes: int = Field(15, ge=1)
    password_min_length: int = Field(12, ge=8)
    bootstrap_admin_username: str = ""  # created at start when no staff account exists
    bootstrap_admin_password: str = ""

    # the front door
    cors_origins: list[str] = Field(default_factory=list)  # e.g. the ops console's origin
    max_request_bytes: int = Field(1_048_576, ge=1024)
    # requests in progress per gateway process (event streams aside); beyond it a fast 429
    # overloaded before any other work (services/gateway/load_shedding.py)
    max_in_flight_requests: int = Field(256, ge=1, le=100_000)
    trusted_proxies: list[str] = Field(default_factory=list)  # may set X-Forwarded-For
    # no proxy in front: each connection's peer is the client (production needs this or
    # trusted_proxies, so per-address limits never silently hold for everyone at once)
    direct_clients: bool = False
    rate_limits: RateLimitSettings = RateLimitSettings()
    # The front door's own Redis pool: one script call per proxied request (token logout,
    # ended logins, slow lane, every limit). Sized for a release-time surge; a request
    # never queues long for a connection: past front_door_redis_wait_seconds it gets a 429
    # overloaded with Retry-After (rate_limits.overloaded_retry_after_seconds), as it does
    # when the call runs past rate_limits.redis_timeout_seconds. Per gateway replica.
    front_door_redis_max_connections: int = Field(1000, ge=1, le=100_000)
    front_door_redis_wait_seconds: float = Field(0.075, gt=0, le=5)

    # the console's live changes (console_changes.py): a Kafka consumer per process on the
    # topics of appointments, referrals and followup (kafka_bootstrap), fanned out to the
    # open streams; at most one message per domain per coalesce period, heartbeats
    console_changes_enabled: bool = True
    console_changes_coalesce_seconds: float = Field(1.0, ge=0, le=60)
    console_changes_heartbeat_seconds: float = Field(15.0, gt=0, le=300)

    def production_problems(self) -> list[str]:
        """The shared checks, trusted proxies and the gateway's own development secrets."""
        problems = super().production_problems()
        if not self.trusted_proxies and not self.direct_clients:
            problems.append(
                "trusted_proxies is empty: behind the ingress every client would have the "
                "ingress's address, and per-address limits would hold for everyone at once; "
                "list the ingress or load balancer networks (CIDRs), or set direct_clients "
                "when clients connect to the gateway itself"
            )
        if is_dev_pem(self.jwt_private_key, self.jwt_private_key_file):
            problems.append("jwt_private_key is the development key pair's (devstack)")
        if self.bootstrap_admin_password.startswith(DEV_PASSWORD_PREFIX):
            problems.append("bootstrap_admin_password is the devstack's development password")
        return problems
