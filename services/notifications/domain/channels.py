"""The channels a message can go out on (pure: the providers and the rules share it)."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    INBOX = "inbox"
    WECHAT = "wechat"
    SMS = "sms"
    VOICE = "voice"
