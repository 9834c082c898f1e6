"""Settings of the notifications service (environment prefix ``CARELOOP_NOTIFICATIONS_``).

Provider credentials come from here (or the environment); the embedded default sends
every channel to the local sandbox, which records deliveries in Mongo.
"""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from services.notifications.domain.rules import QuietHours
from shared.settings import ServiceSettings

QUIET_CLOCK = r"^(([01]\d|2[0-3]):[0-5]\d)?$"  # HH:MM, or empty


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CARELOOP_NOTIFICATIONS_", extra="ignore", frozen=True
    )

    service_name: str = "notifications"
    http_port: int = 8103

    # which adapter serves each channel: "sandbox", "aliyun" (SMS), "wechat" (WeChat)
    sms_provider: str = "sandbox"
    wechat_provider: str = "sandbox"
    voice_provider: str = "sandbox"
    sandbox_auto_deliver: bool = True  # the sandbox confirms delivery at once
    sandbox_fail_channels: list[str] = Field(default_factory=list)  # fault injection (tests)
    provider_timeout_seconds: float = 5.0

    # Aliyun SMS (dysmsapi, RPC style, HMAC-SHA1 signature)
    aliyun_sms_endpoint: str = "https://dysmsapi.aliyuncs.com/"
    aliyun_access_key_id: str = ""
    aliyun_access_key_secret: str = ""
    aliyun_sms_sign_name: str = ""
    # receipts: the callback URL carries ?token=<receipt_token(secret)> (HMAC-SHA256 of this
    # per-deployment secret over a fixed label); unset refuses every receipt
    aliyun_receipt_secret: str = ""
    aliyun_receipt_allowed_networks: list[str] = Field(default_factory=list)  # CIDRs; []: any

    # WeChat mini-program subscription messages
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_app_id: str = ""
    wechat_app_secret: str = ""
    wechat_miniprogram_state: str = "formal"  # formal | trial | developer
    wechat_callback_token: str = ""  # message-push token: signature over token+timestamp+nonce
    # message push in safe mode: the 43-character EncodingAESKey; unset refuses every push
    wechat_encoding_aes_key: str = Field("", pattern=r"^([A-Za-z0-9+/]{43})?$")
    wechat_callback_window_seconds: int = Field(300, ge=10, le=3600)  # timestamp window, nonce TTL
    # the gateway's addresses: from them X-Forwarded-For names a callback's source
    callback_trusted_proxies: list[str] = Field(default_factory=list)

    # template previews (and publishing) render in a separate process, killed when too slow
    template_preview_timeout_seconds: float = Field(2.0, gt=0, le=30)
    template_max_output_bytes: int = Field(16 * 1024, ge=1024, le=1024 * 1024)
    template_preview_concurrency: int = Field(2, ge=1, le=16)

    # message kind -> the provider's template code (Aliyun) / template id (WeChat)
    sms_template_codes: dict[str, str] = Field(default_factory=dict)
    wechat_template_ids: dict[str, str] = Field(default_factory=dict)

    # delivery policy
    delivery_max_attempts: int = 4  # per channel, then dead letter and the next channel
    delivery_retry_base_seconds: float = 30.0
    delivery_retry_max_seconds: float = 900.0
    default_language: str = "zh-CN"
    # the default quiet hours (hospital time) of a patient who set none; both empty: none.
    # (An equal start and end, the old spelling of "none", still means none here; the
    # preferences API refuses it.)
    quiet_hours_start: str = Field("22:00", pattern=QUIET_CLOCK)
    quiet_hours_end: str = Field("07:00", pattern=QUIET_CLOCK)
    reminder_offsets_minutes: list[int] = Field(default_factory=lambda: [24 * 60, 120])
    patient_rate_limit_per_hour: int = 10  # push messages per patient and channel
    # well inside the gateway's stream idle timeout (60 s) and common proxies' (60 s)
    inbox_stream_heartbeat_seconds: float = Field(10.0, gt=0, le=30)

    @model_validator(mode="after")
    def _quiet_hours_both_or_neither(self) -> NotificationsSettings:
        if bool(self.quiet_hours_start) != bool(self.quiet_hours_end):
            raise ValueError("quiet_hours_start and quiet_hours_end: both HH:MM or both empty")
        return self

    @field_validator("aliyun_receipt_allowed_networks", "callback_trusted_proxies")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr.strip(), strict=False)  # a ValueError names the bad one
        return value

    def production_problems(self) -> list[str]:
        """The shared checks, and no sandbox provider: its records hold every text (login
        codes too) where an admin can read them."""
        problems = super().production_problems()
        if self.sms_provider != "aliyun":
            problems.append(f"sms_provider is {self.sms_provider!r}, not 'aliyun' (the sandbox)")
        if self.wechat_provider != "wechat":
            problems.append(
                f"wechat_provider is {self.wechat_provider!r}, not 'wechat' (the sandbox)"
            )
        return problems

    @property
    def default_quiet_hours(self) -> QuietHours | None:
        """The default quiet hours, or ``None`` for none (empty, or start equal to end)."""
        start, end = self.quiet_hours_start, self.quiet_hours_end
        if not start or start == end:
            return None
        return QuietHours.parse(start, end)
