"""Asking a provider about an earlier send under a key, and sending twice under one key."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient

from services.notifications.domain.channels import Channel
from services.notifications.providers.aliyun_sms import AliyunSmsProvider
from services.notifications.providers.base import (
    NEVER_SENT,
    UNKNOWABLE,
    Lookup,
    ProviderError,
    SendResult,
    SendStatus,
)
from services.notifications.providers.sandbox import SandboxProvider
from services.notifications.providers.wechat import WechatSubscribeProvider
from services.notifications.store import INDEXES, SANDBOX
from shared.mongo import Document, ensure_indexes
from shared.settings import ServiceSettings
from tests.integration.notifications.test_providers import SMS, WECHAT, settings
from tests.support.provider_servers import AliyunSmsServer
from tests.support.server import serve

pytestmark = pytest.mark.integration


@pytest.fixture
async def aliyun() -> AsyncIterator[tuple[AliyunSmsServer, AliyunSmsProvider]]:
    server = AliyunSmsServer()
    async with serve(server.app) as url:
        provider = AliyunSmsProvider(settings(aliyun_sms_endpoint=f"{url}/"))
        yield server, provider
        await provider.aclose()


async def test_aliyun_lookup_finds_the_send_by_its_out_id_among_others(
    aliyun: tuple[AliyunSmsServer, AliyunSmsProvider],
) -> None:
    server, sms = aliyun
    since = datetime.now(UTC)
    assert await sms.lookup(SMS, since) == NEVER_SENT
    for n in range(60):  # more than one page of other sends to the same number
        await sms.send(replace(SMS, message_id=f"other-{n}"))
    assert await sms.lookup(SMS, since) == NEVER_SENT
    await sms.send(SMS)
    assert await sms.lookup(SMS, since) == Lookup(
        known=True, result=SendResult(SendStatus.DELIVERED, "aliyun", None)
    )
    assert len(server.sends) == 61  # looking up sent nothing
    assert server.refused == []
    # a key of its own (a redelivery) is a send of its own
    assert await sms.lookup(replace(SMS, idempotency_key="msg-1~2"), since) == NEVER_SENT


async def test_aliyun_lookup_asks_the_day_of_the_attempt_and_today(
    aliyun: tuple[AliyunSmsServer, AliyunSmsProvider],
) -> None:
    server, sms = aliyun
    await sms.send(SMS)
    before = server.queries
    found = await sms.lookup(SMS, datetime.now(UTC) - timedelta(days=1))
    assert found.result is not None
    assert server.queries - before == 2  # yesterday (nothing), then today


async def test_aliyun_lookup_that_cannot_be_made_is_a_retryable_error(
    aliyun: tuple[AliyunSmsServer, AliyunSmsProvider],
) -> None:
    _, sms = aliyun
    endpoint = sms._endpoint
    wrong = AliyunSmsProvider(settings(aliyun_access_key_id="nope", aliyun_sms_endpoint=endpoint))
    with pytest.raises(ProviderError) as caught:
        await wrong.lookup(SMS, datetime.now(UTC))
    assert caught.value.retryable
    assert caught.value.code == "InvalidAccessKeyId.NotFound"
    await wrong.aclose()


async def test_wechat_cannot_be_asked() -> None:
    wx = WechatSubscribeProvider(settings())
    assert await wx.lookup(WECHAT, datetime.now(UTC)) == UNKNOWABLE
    await wx.aclose()


async def test_sandbox_sends_once_per_key_and_finds_it(
    mongo: AsyncMongoClient[Document], make_settings: Callable[..., ServiceSettings]
) -> None:
    db = mongo[make_settings().database_name]
    await ensure_indexes(db, INDEXES)
    sandbox = SandboxProvider(db, Channel.SMS)
    since = datetime.now(UTC)
    assert await sandbox.lookup(SMS, since) == NEVER_SENT
    first = await sandbox.send(SMS)
    again = await sandbox.send(replace(SMS, attempt_id="att-2"))
    assert again == first
    assert await sandbox.lookup(SMS, since) == Lookup(known=True, result=first)
    assert await db[SANDBOX].count_documents({"message_id": "msg-1"}) == 1
    other = await sandbox.send(replace(SMS, idempotency_key="msg-1~1"))
    assert other != first
    assert await db[SANDBOX].count_documents({"message_id": "msg-1"}) == 2
