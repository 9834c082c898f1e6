"""Patient logins at the gateway: phone + SMS code, WeChat code2session, tokens and sessions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Query

from services.gateway.identity.codes import LoginCodes
from tests.integration.gateway.conftest import Gateway, bearer
from tests.support.server import serve

pytestmark = pytest.mark.integration

PHONE = "13912345678"
INBOX = "/v1/notifications/inbox"


async def test_a_patient_logs_in_with_a_texted_code_and_reaches_the_services(
    gateway: Gateway,
) -> None:
    login = await gateway.patient_login(PHONE)

    assert login["token_type"] == "Bearer"
    assert login["expires_in"] == gateway.settings.access_token_ttl_seconds
    assert login["account"]["phone"] == "139****5678"
    assert login["account"]["roles"] == ["patient"]
    me = await gateway.client.get("/v1/auth/me", headers=bearer(login["access_token"]))
    assert me.json()["id"] == login["account"]["id"]
    inbox = await gateway.client.get(INBOX, headers=bearer(login["access_token"]))
    assert inbox.status_code == 200, inbox.text  # the service verified the gateway's token

    again = await gateway.patient_login(PHONE)  # the same phone is the same account
    assert again["account"]["id"] == login["account"]["id"]
    sms = await gateway.notifications.sandbox(kind="auth.login_code")
    assert {d["address_masked"] for d in sms} == {"139****5678"}


async def test_wrong_used_and_exhausted_codes_are_refused(gateway: Gateway) -> None:
    assert (await gateway.ask_code(PHONE)).status_code == 202
    code = await gateway.code_for(PHONE)
    wrong = "000000" if code != "000000" else "111111"

    async def login(value: str) -> httpx.Response:
        return await gateway.client.post("/v1/auth/login/otp", json={"phone": PHONE, "code": value})

    first = await login(wrong)
    assert first.status_code == 401
    assert (first.json()["code"], first.json()["attempts_left"]) == ("code_wrong", 4)
    assert (await login(code)).status_code == 200
    reused = await login(code)
    assert (reused.status_code, reused.json()["code"]) == (401, "code_expired")

    assert (await gateway.ask_code(PHONE)).status_code == 202
    fresh = await gateway.code_for(PHONE)
    for _ in range(gateway.settings.otp_max_attempts - 1):
        assert (await login(wrong)).json()["code"] == "code_wrong"
    last = await login(wrong)
    assert last.json()["code"] == "code_attempts_exhausted"
    after = await login(fresh)  # the right code is gone with the last wrong try
    assert (after.status_code, after.json()["code"]) == (401, "code_expired")


async def test_an_expired_code_is_refused(gateway: Gateway) -> None:
    assert (await gateway.ask_code(PHONE)).status_code == 202
    code = await gateway.code_for(PHONE)
    codes: LoginCodes = gateway.app.state.logins.codes
    await codes.redis.pexpire(f"{codes._prefix}code:{codes._subject(PHONE)}", 1)
    await asyncio.sleep(0.01)

    late = await gateway.client.post("/v1/auth/login/otp", json={"phone": PHONE, "code": code})

    assert (late.status_code, late.json()["code"]) == (401, "code_expired")


async def test_codes_are_rationed_per_phone(gateway: Gateway) -> None:
    codes: LoginCodes = gateway.app.state.logins.codes
    strict = LoginCodes(
        codes.redis, b"k" * 32, prefix="rationed:", resend_seconds=60, daily_limit=2
    )
    await strict.issue(PHONE)
    with pytest.raises(Exception, match="code_resend_too_soon") as soon:
        await strict.issue(PHONE)
    assert 0 < int(soon.value.headers["Retry-After"]) <= 60  # type: ignore[attr-defined]
    other = LoginCodes(codes.redis, b"k" * 32, prefix="daily:", resend_seconds=0, daily_limit=2)
    await other.issue(PHONE)
    await other.issue(PHONE)
    with pytest.raises(Exception, match="code_daily_limit"):
        await other.issue(PHONE)
    stored = await codes.redis.hgetall(f"rationed:otp:code:{strict._subject(PHONE)}")
    assert set(stored) == {"digest", "tries"}  # a keyed hash; the code itself is not kept


async def test_bad_phone_numbers_are_problems(gateway: Gateway) -> None:
    for body in ({"phone": "12345"}, {"phone": "139123456789"}, {}):
        response = await gateway.client.post("/v1/auth/otp", json=body)
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_refresh_rotates_and_a_reused_token_ends_the_login(gateway: Gateway) -> None:
    login = await gateway.patient_login(PHONE)

    async def refresh(token: str) -> httpx.Response:
        return await gateway.client.post("/v1/auth/refresh", json={"refresh_token": token})

    second = await refresh(login["refresh_token"])
    assert second.status_code == 200, second.text
    assert second.json()["refresh_token"] != login["refresh_token"]
    assert second.headers["cache-control"] == "no-store"
    third = await refresh(second.json()["refresh_token"])
    assert third.status_code == 200

    stolen = await refresh(login["refresh_token"])  # a used token comes back: it was copied
    assert (stolen.status_code, stolen.json()["code"]) == (401, "refresh_reused")
    latest = await refresh(third.json()["refresh_token"])
    assert (latest.status_code, latest.json()["code"]) == (401, "refresh_revoked")
    assert (await refresh("nonsense")).json()["code"] == "refresh_invalid"


async def test_logout_revokes_the_access_and_refresh_tokens(gateway: Gateway) -> None:
    login = await gateway.patient_login(PHONE)
    token = login["access_token"]
    assert (await gateway.client.get(INBOX, headers=bearer(token))).status_code == 200

    out = await gateway.client.post(
        "/v1/auth/logout", json={"refresh_token": login["refresh_token"]}, headers=bearer(token)
    )

    assert out.status_code == 204
    refused = await gateway.client.get(INBOX, headers=bearer(token))
    assert (refused.status_code, refused.json()["code"]) == (401, "token_invalid")
    again = await gateway.client.post(
        "/v1/auth/refresh", json={"refresh_token": login["refresh_token"]}
    )
    assert again.status_code == 401


async def test_the_front_door_wants_a_valid_token(gateway: Gateway) -> None:
    missing = await gateway.client.get(INBOX)
    assert (missing.status_code, missing.json()["code"]) == (401, "token_missing")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    expired = gateway.minter.mint("pa-x", ["patient"], issued_at=int(time.time()) - 3600)
    old = await gateway.client.get(INBOX, headers=bearer(expired))
    assert (old.status_code, old.json()["code"]) == (401, "token_expired")
    garbage = await gateway.client.get(INBOX, headers=bearer("a.b.c"))
    assert garbage.json()["code"] == "token_invalid"
    # provider callbacks carry their own signatures: the gateway lets them through, and
    # the notifications service refuses an unsigned one itself
    callback = await gateway.client.get("/v1/notifications/providers/wechat/events")
    assert callback.status_code == 401, callback.text
    assert callback.json()["code"].startswith("callback_"), callback.text


# --- WeChat mini-program login -------------------------------------------------------------


@pytest.fixture
async def wechat_server() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """Speaks code2session: ``ok-<openid>`` codes succeed, ``used`` is refused, else busy."""
    app = FastAPI()
    calls: list[dict[str, Any]] = []

    @app.get("/sns/jscode2session")
    async def code2session(
        appid: str, secret: str, js_code: str, grant_type: str = Query()
    ) -> dict[str, Any]:
        calls.append({"appid": appid, "secret": secret, "code": js_code, "grant": grant_type})
        if js_code.startswith("ok-"):
            return {"openid": js_code[3:], "session_key": "sk", "unionid": "u-" + js_code[3:]}
        if js_code == "used":
            return {"errcode": 40163, "errmsg": "code been used"}
        return {"errcode": -1, "errmsg": "system busy"}

    async with serve(app) as url:
        yield url, calls


async def test_a_mini_program_user_logs_in_with_a_wechat_code(
    gateway: Gateway, wechat_server: tuple[str, list[dict[str, Any]]]
) -> None:
    url, calls = wechat_server
    gateway.app.state.logins.wechat.appid = "wx-app"
    gateway.app.state.logins.wechat.secret = "wx-secret"
    gateway.app.state.logins.wechat.base = url

    async def login(code: str) -> httpx.Response:
        return await gateway.client.post("/v1/auth/login/wechat", json={"code": code})

    first = await login("ok-openid-123")
    assert first.status_code == 200, first.text
    assert first.json()["account"]["wechat_bound"] is True
    assert calls[-1] == {
        "appid": "wx-app",
        "secret": "wx-secret",
        "code": "ok-openid-123",
        "grant": "authorization_code",
    }
    again = await login("ok-openid-123")
    assert again.json()["account"]["id"] == first.json()["account"]["id"]
    bound = await gateway.notifications.ctx.recipients.wechat_openid(
        first.json()["account"]["id"], None
    )
    assert bound == "openid-123"  # notifications may now send WeChat messages
    assert (await login("used")).json()["code"] == "wechat_code_invalid"
    busy = await login("whatever")
    assert (busy.status_code, busy.json()["code"]) == (503, "wechat_unavailable")


async def test_wechat_login_is_off_unless_configured(gateway: Gateway) -> None:
    response = await gateway.client.post("/v1/auth/login/wechat", json={"code": "ok-x"})
    assert (response.status_code, response.json()["code"]) == (404, "wechat_login_disabled")
