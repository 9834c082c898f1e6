"""Which adapter serves each push channel, chosen in settings."""

from __future__ import annotations

from services.notifications.domain.channels import Channel
from services.notifications.providers.base import Provider
from services.notifications.providers.sandbox import SandboxProvider
from services.notifications.settings import NotificationsSettings
from shared.mongo import Database


def build_providers(settings: NotificationsSettings, db: Database) -> dict[Channel, Provider]:
    failing = {Channel(c) for c in settings.sandbox_fail_channels}

    def sandbox(channel: Channel) -> Provider:
        return SandboxProvider(
            db, channel, auto_deliver=settings.sandbox_auto_deliver, failing=channel in failing
        )

    providers: dict[Channel, Provider] = {}
    if settings.sms_provider == "aliyun":
        from services.notifications.providers.aliyun_sms import AliyunSmsProvider

        providers[Channel.SMS] = AliyunSmsProvider(settings)
    else:
        providers[Channel.SMS] = sandbox(Channel.SMS)
    if settings.wechat_provider == "wechat":
        from services.notifications.providers.wechat import WechatSubscribeProvider

        providers[Channel.WECHAT] = WechatSubscribeProvider(settings)
    else:
        providers[Channel.WECHAT] = sandbox(Channel.WECHAT)
    providers[Channel.VOICE] = sandbox(Channel.VOICE)
    return providers
