"""The Aliyun SMS and WeChat adapters against local servers that speak the providers' side.

No test leaves the machine: each server runs with uvicorn on a free 127.0.0.1 port in the
test's event loop. The Aliyun stand-in recomputes every signature; the WeChat stand-in
issues and checks access tokens.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
import structlog

from devstack.processes import free_port
from services.notifications.domain.channels import Channel
from services.notifications.providers.aliyun_sms import AliyunSmsProvider
from services.notifications.providers.base import (
    ProviderError,
    Rendered,
    SendRequest,
    SendResult,
    SendStatus,
)
from services.notifications.providers.wechat import WechatSubscribeProvider
from services.notifications.settings import NotificationsSettings
from tests.support.provider_servers import (
    ALIYUN_KEY_ID,
    ALIYUN_KEY_SECRET,
    ALIYUN_SIGN_NAME,
    WECHAT_APP_ID,
    WECHAT_APP_SECRET,
    AliyunSmsServer,
    WechatServer,
)
from tests.support.server import serve

pytestmark = pytest.mark.integration

PHONE = "13812345678"
OPENID = "o7esq5PHRGBQYmeNyfG064wEFVpQ"

SMS = SendRequest(
    message_id="msg-1",
    attempt_id="att-1",
    channel=Channel.SMS,
    address=PHONE,
    kind="appointment.reminder",
    language="zh-CN",
    rendered=Rendered(body="unused", fields={"dept": "心内科", "time": "5月1日 09:30"}),
    provider_template="SMS_71390007",
)
WECHAT = SendRequest(
    message_id="msg-2",
    attempt_id="att-2",
    channel=Channel.WECHAT,
    address=OPENID,
    kind="appointment.reminder",
    language="zh-CN",
    rendered=Rendered(
        fields={"thing1": "心内科复诊", "time2": "2024-05-01 09:30"},
        page="pages/visit/detail?id=1",
    ),
    provider_template="tpl-reminder",
)


def settings(**overrides: object) -> NotificationsSettings:
    values: dict[str, object] = {
        "aliyun_access_key_id": ALIYUN_KEY_ID,
        "aliyun_access_key_secret": ALIYUN_KEY_SECRET,
        "aliyun_sms_sign_name": ALIYUN_SIGN_NAME,
        "wechat_app_id": WECHAT_APP_ID,
        "wechat_app_secret": WECHAT_APP_SECRET,
        "wechat_miniprogram_state": "trial",
        "provider_timeout_seconds": 2.0,
        **overrides,
    }
    return NotificationsSettings(**values)  # type: ignore[arg-type]


class Clock:
    """A hand-moved monotonic clock for the token cache."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
async def aliyun_served() -> AsyncIterator[tuple[AliyunSmsServer, str]]:
    server = AliyunSmsServer()
    async with serve(server.app) as url:
        yield server, f"{url}/"


@pytest.fixture
def aliyun(aliyun_served: tuple[AliyunSmsServer, str]) -> tuple[AliyunSmsServer, str]:
    """The module's Aliyun server, wiped clean for this test."""
    aliyun_served[0].reset()
    return aliyun_served


@pytest.fixture
async def sms(aliyun: tuple[AliyunSmsServer, str]) -> AsyncIterator[AliyunSmsProvider]:
    provider = AliyunSmsProvider(settings(aliyun_sms_endpoint=aliyun[1]))
    yield provider
    await provider.aclose()


@pytest.fixture(scope="module")
async def weixin_served() -> AsyncIterator[tuple[WechatServer, str]]:
    server = WechatServer()
    async with serve(server.app) as url:
        yield server, url


@pytest.fixture
def weixin(weixin_served: tuple[WechatServer, str]) -> tuple[WechatServer, str]:
    """The module's WeChat server, wiped clean for this test."""
    weixin_served[0].reset()
    return weixin_served


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def wx(
    weixin: tuple[WechatServer, str], clock: Clock
) -> AsyncIterator[WechatSubscribeProvider]:
    provider = WechatSubscribeProvider(settings(wechat_api_base=weixin[1]), clock=clock)
    yield provider
    await provider.aclose()


async def refused(
    provider: AliyunSmsProvider | WechatSubscribeProvider, request: SendRequest
) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await provider.send(request)
    return caught.value


# --- Aliyun SMS -------------------------------------------------------------------------------


async def test_aliyun_send_is_signed_and_carries_the_request(
    aliyun: tuple[AliyunSmsServer, str], sms: AliyunSmsProvider
) -> None:
    server, _ = aliyun
    result = await sms.send(SMS)
    assert server.refused == []
    (seen,) = server.sends
    assert (seen.phone, seen.sign_name, seen.template_code) == (PHONE, "CareLoop", "SMS_71390007")
    assert seen.params == {"dept": "心内科", "time": "5月1日 09:30"}
    assert seen.out_id == "msg-1"  # the key: the message id, not the attempt
    assert seen.method == "POST"
    assert result == SendResult(SendStatus.SENT, "aliyun", seen.biz_id)
    assert (sms.name, sms.channel) == ("aliyun", Channel.SMS)


async def test_aliyun_body_goes_as_content_when_there_are_no_fields(
    aliyun: tuple[AliyunSmsServer, str], sms: AliyunSmsProvider
) -> None:
    server, _ = aliyun
    body = "张三 您好: 9:30 *3楼~A+B* 就诊 & 取号 100%"  # every character class the encoding treats
    await sms.send(replace(SMS, rendered=Rendered(body=body)))
    await sms.send(replace(SMS, rendered=Rendered(body=body)))  # a fresh nonce each time
    assert server.refused == []
    assert [s.params for s in server.sends] == [{"content": body}, {"content": body}]


async def test_aliyun_without_template_code_fails_without_calling(
    aliyun: tuple[AliyunSmsServer, str], sms: AliyunSmsProvider
) -> None:
    error = await refused(sms, replace(SMS, provider_template=None))
    assert (error.code, error.retryable) == ("template_not_configured", False)
    assert aliyun[0].requests == 0


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"aliyun_access_key_secret": "wrong-secret"}, "SignatureDoesNotMatch"),
        ({"aliyun_access_key_id": "someone-else"}, "InvalidAccessKeyId.NotFound"),
        ({"aliyun_sms_sign_name": "Unknown"}, "isv.SMS_SIGNATURE_ILLEGAL"),
    ],
)
async def test_aliyun_credential_errors_are_not_retryable(
    aliyun: tuple[AliyunSmsServer, str], overrides: dict[str, str], code: str
) -> None:
    server, url = aliyun
    provider = AliyunSmsProvider(settings(aliyun_sms_endpoint=url, **overrides))
    error = await refused(provider, SMS)
    await provider.aclose()
    assert (error.provider, error.code, error.retryable) == ("aliyun", code, False)
    assert server.refused == [code]
    assert server.sends == []


async def test_aliyun_invalid_number_is_not_retryable(
    aliyun: tuple[AliyunSmsServer, str], sms: AliyunSmsProvider
) -> None:
    error = await refused(sms, replace(SMS, address="12345"))
    assert (error.code, error.retryable) == ("isv.MOBILE_NUMBER_ILLEGAL", False)


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        ("isv.BUSINESS_LIMIT_CONTROL", 200, True),
        ("Throttling.User", 400, True),
        ("SignatureNonceUsed", 400, True),
        ("isp.SYSTEM_ERROR", 200, True),
        ("InternalError", 500, True),
        (None, 503, True),
        ("isv.TEMPLATE_MISSING_PARAMETERS", 200, False),
        ("isv.SMS_TEMPLATE_ILLEGAL", 200, False),
        ("isv.INVALID_PARAMETERS", 200, False),
        ("isv.BLACK_KEY_CONTROL_LIMIT", 200, False),
        ("isv.AMOUNT_NOT_ENOUGH", 200, False),
        ("Some.NewCode", 400, False),
    ],
)
async def test_aliyun_error_answers_map_to_retryable_or_not(
    aliyun: tuple[AliyunSmsServer, str],
    sms: AliyunSmsProvider,
    code: str | None,
    status: int,
    retryable: bool,
) -> None:
    server, _ = aliyun
    server.fail_next(1, code, status=status)
    error = await refused(sms, SMS)
    assert (error.code, error.retryable) == (code or f"http_{status}", retryable)
    assert (await sms.send(SMS)).status == SendStatus.SENT  # only the next one was failed
    assert len(server.sends) == 1


async def test_aliyun_timeout_is_retryable(aliyun: tuple[AliyunSmsServer, str]) -> None:
    server, url = aliyun
    server.delay_next(1, 0.6)
    provider = AliyunSmsProvider(settings(aliyun_sms_endpoint=url, provider_timeout_seconds=0.2))
    error = await refused(provider, SMS)
    await provider.aclose()
    assert (error.code, error.retryable, error.in_doubt) == ("timeout", True, True)


async def test_aliyun_connection_refused_is_retryable() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}/"
    provider = AliyunSmsProvider(settings(aliyun_sms_endpoint=endpoint))
    error = await refused(provider, SMS)
    await provider.aclose()
    assert (error.code, error.retryable, error.in_doubt) == ("connection_error", True, False)


async def test_aliyun_logs_neither_the_number_nor_the_secret(
    aliyun: tuple[AliyunSmsServer, str], sms: AliyunSmsProvider
) -> None:
    aliyun[0].fail_next(1, "isv.BUSINESS_LIMIT_CONTROL")
    with structlog.testing.capture_logs() as logs:
        await refused(sms, SMS)
        await sms.send(SMS)
    assert [entry["event"] for entry in logs] == ["aliyun_sms.failed", "aliyun_sms.sent"]
    assert all(entry["phone"] == "138****5678" for entry in logs)
    assert PHONE not in repr(logs)
    assert ALIYUN_KEY_SECRET not in repr(logs)


async def test_aliyun_uses_a_given_client_and_leaves_it_open(
    aliyun: tuple[AliyunSmsServer, str],
) -> None:
    async with httpx.AsyncClient(timeout=2.0) as client:
        provider = AliyunSmsProvider(settings(aliyun_sms_endpoint=aliyun[1]), client=client)
        await provider.send(SMS)
        await provider.aclose()
        assert not client.is_closed
        assert len(aliyun[0].sends) == 1


# --- WeChat -----------------------------------------------------------------------------------


async def test_wechat_send_carries_the_request(
    weixin: tuple[WechatServer, str], wx: WechatSubscribeProvider
) -> None:
    server, _ = weixin
    result = await wx.send(WECHAT)
    (seen,) = server.sends
    assert (seen.touser, seen.template_id, seen.page) == (
        OPENID,
        "tpl-reminder",
        "pages/visit/detail?id=1",
    )
    assert seen.data == {"thing1": {"value": "心内科复诊"}, "time2": {"value": "2024-05-01 09:30"}}
    assert (seen.miniprogram_state, seen.lang) == ("trial", "zh_CN")
    assert seen.access_token == server.current_token
    assert result == SendResult(SendStatus.SENT, "wechat", str(seen.msgid))
    assert result.provider_message_id == "3248682510344192008"  # exact beyond 2**53
    assert (wx.name, wx.channel) == ("wechat", Channel.WECHAT)


async def test_wechat_english_without_page(
    weixin: tuple[WechatServer, str], wx: WechatSubscribeProvider
) -> None:
    await wx.send(replace(WECHAT, language="en-US", rendered=Rendered(fields={"thing1": "Visit"})))
    (seen,) = weixin[0].sends
    assert (seen.lang, seen.page) == ("en_US", None)


async def test_wechat_without_template_id_fails_without_calling(
    weixin: tuple[WechatServer, str], wx: WechatSubscribeProvider
) -> None:
    error = await refused(wx, replace(WECHAT, provider_template=None))
    assert (error.code, error.retryable) == ("template_not_configured", False)
    assert (weixin[0].token_requests, weixin[0].send_requests) == (0, 0)


async def test_wechat_token_is_cached_across_sends(
    weixin: tuple[WechatServer, str], wx: WechatSubscribeProvider
) -> None:
    for _ in range(3):
        await wx.send(WECHAT)
    assert weixin[0].token_requests == 1
    assert len(weixin[0].sends) == 3


async def test_wechat_token_is_fetched_once_under_concurrency(
    weixin: tuple[WechatServer, str], wx: WechatSubscribeProvider
) -> None:
    server, _ = weixin
    server.token_delay = 0.05  # long enough for all twenty to be waiting on it
    results = await asyncio.gather(*(wx.send(WECHAT) for _ in range(20)))
    assert server.token_requests == 1
    assert len({r.provider_message_id for r in results}) == 20
    assert len(server.sends) == 20


async def test_wechat_token_is_refreshed_a_minute_before_it_expires(
    weixin: tuple[WechatServer, str], clock: Clock
) -> None:
    server, url = weixin
    server.expires_in = 120
    provider = WechatSubscribeProvider(settings(wechat_api_base=url), clock=clock)
    await provider.send(WECHAT)
    clock.now += 59
    await provider.send(WECHAT)
    assert server.token_requests == 1
    clock.now += 2
    await provider.send(WECHAT)
    await provider.aclose()
    assert server.token_requests == 2


@pytest.mark.parametrize("errcode", [40001, 42001, 40014])
async def test_wechat_rejected_token_is_refreshed_and_the_send_retried_once(
    weixin: tuple[WechatServer, str], wx: WechatSubscribeProvider, errcode: int
) -> None:
    server, _ = weixin
    await wx.send(WECHAT)
    server.invalidate_token(errcode)
    result = await wx.send(WECHAT)
    assert result.status == SendStatus.SENT
    assert (server.token_requests, server.send_requests, len(server.sends)) == (2, 3, 2)


async def test_wechat_concurrent_sends_share_one_token_refresh(
    weixin: tuple[WechatServer, str], wx: WechatSubscribeProvider
) -> None:
    server, _ = weixin
    await wx.send(WECHAT)
    server.invalidate_token(40001)
    server.token_delay = 0.05
    results = await asyncio.gather(*(wx.send(WECHAT) for _ in range(20)))
    assert all(r.status == SendStatus.SENT for r in results)
    assert server.token_requests == 2
    assert len(server.sends) == 21


async def test_wechat_token_still_refused_after_refresh_is_retryable(
    weixin: tuple[WechatServer, str], wx: WechatSubscribeProvider
) -> None:
    server, _ = weixin
    server.answer_next_sends(2, 40001)
    error = await refused(wx, WECHAT)
    assert (error.code, error.retryable) == ("40001", True)
    assert (server.token_requests, server.send_requests) == (2, 2)


@pytest.mark.parametrize(
    ("errcode", "retryable"),
    [
        (43101, False),
        (40003, False),
        (47003, False),
        (40037, False),
        (-1, True),
        (45009, True),
        (45047, True),
        (43108, True),
    ],
)
async def test_wechat_errcodes_map_to_retryable_or_not(
    weixin: tuple[WechatServer, str], wx: WechatSubscribeProvider, errcode: int, retryable: bool
) -> None:
    weixin[0].answer_next_sends(1, errcode)
    error = await refused(wx, WECHAT)
    assert (error.provider, error.code, error.retryable) == ("wechat", str(errcode), retryable)
    assert weixin[0].token_requests == 1  # not a token problem: no refresh


async def test_wechat_server_checks_reach_the_adapter_as_permanent_errors(
    weixin: tuple[WechatServer, str], wx: WechatSubscribeProvider
) -> None:
    empty_value = replace(WECHAT, rendered=Rendered(fields={"thing1": ""}))
    assert (await refused(wx, empty_value)).code == "47003"
    no_openid = replace(WECHAT, address="")
    assert (await refused(wx, no_openid)).code == "40003"
    assert weixin[0].sends == []


async def test_wechat_http_5xx_and_timeouts_are_retryable(
    weixin: tuple[WechatServer, str], wx: WechatSubscribeProvider
) -> None:
    server, url = weixin
    server.answer_next_sends(1, 0, status=502)
    error = await refused(wx, WECHAT)
    assert (error.code, error.retryable) == ("http_502", True)
    server.send_delay = 0.6
    quick = WechatSubscribeProvider(settings(wechat_api_base=url, provider_timeout_seconds=0.2))
    error = await refused(quick, WECHAT)
    await quick.aclose()
    assert (error.code, error.retryable, error.in_doubt) == ("timeout", True, True)


async def test_wechat_token_failures(weixin: tuple[WechatServer, str]) -> None:
    server, url = weixin
    wrong = WechatSubscribeProvider(settings(wechat_api_base=url, wechat_app_secret="nope"))
    error = await refused(wrong, WECHAT)
    await wrong.aclose()
    assert (error.code, error.retryable) == ("40125", False)
    provider = WechatSubscribeProvider(settings(wechat_api_base=url))
    server.answer_next_tokens(1, -1)
    error = await refused(provider, WECHAT)
    assert (error.code, error.retryable) == ("-1", True)
    assert (await provider.send(WECHAT)).status == SendStatus.SENT  # the failure is not cached
    await provider.aclose()
    assert server.send_requests == 1


async def test_wechat_logs_no_token_openid_or_secret(
    weixin: tuple[WechatServer, str], wx: WechatSubscribeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = weixin
    server.answer_next_sends(1, 43101)
    caplog.set_level(logging.INFO, logger="httpx")
    with structlog.testing.capture_logs() as logs:
        await refused(wx, WECHAT)
        await wx.send(WECHAT)
    token = server.current_token
    assert token
    # our client's log (httpx) shows the send URLs masked; the stand-in server's own access
    # log, in this same process, is not the product's and may show what it received
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name == "httpx")
    assert "access_token=***" in ours
    assert token not in ours
    events = [entry["event"] for entry in logs]
    assert events == ["wechat.token_fetched", "wechat.send_failed", "wechat.sent"]
    for secret in (token, OPENID, WECHAT_APP_SECRET):
        assert secret not in repr(logs)
