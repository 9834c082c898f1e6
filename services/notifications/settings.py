"""Settings of the notifications service (environment prefix ``CARELOOP_NOTIFICATIONS_``).

Provider credentials come from here (or the environment); the embedded default sends
every channel to the local sandbox, which records deliveries in Mongo.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


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
    aliyun_receipt_token: str = ""  # shared secret in the receipt callback URL (?token=)

    # WeChat mini-program subscription messages
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_app_id: str = ""
    wechat_app_secret: str = ""
    wechat_miniprogram_state: str = "formal"  # formal | trial | developer
    wechat_callback_token: str = ""  # message-push token: signature over token+timestamp+nonce

    # message kind -> the provider's template code (Aliyun) / template id (WeChat)
    sms_template_codes: dict[str, str] = Field(default_factory=dict)
    wechat_template_ids: dict[str, str] = Field(default_factory=dict)

    # delivery policy
    delivery_max_attempts: int = 4  # per channel, then dead letter and the next channel
    delivery_retry_base_seconds: float = 30.0
    delivery_retry_max_seconds: float = 900.0
    default_language: str = "zh-CN"
    quiet_hours_start: str = "22:00"
    quiet_hours_end: str = "07:00"
    reminder_offsets_minutes: list[int] = Field(default_factory=lambda: [24 * 60, 120])
    patient_rate_limit_per_hour: int = 10  # push messages per patient and channel
    inbox_stream_heartbeat_seconds: float = 15.0
