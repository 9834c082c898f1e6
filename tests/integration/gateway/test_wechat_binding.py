"""Binding WeChat to a patient account is verified: a fresh wx.login code exchanged with
WeChat (code2session), never a client-supplied openid; an openid bound to another account
is a 409."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI, Query

from tests.integration.gateway.conftest import Gateway, bearer
from tests.support.server import serve

pytestmark = pytest.mark.integration

BIND = "/v1/auth/me/wechat"


@pytest.fixture
async def wechat(gateway: Gateway) -> AsyncIterator[list[str]]:
    """code2session: ``ok-<openid>`` codes succeed, once each; others are invalid."""
    app = FastAPI()
    used: list[str] = []

    @app.get("/sns/jscode2session")
    async def code2session(
        appid: str, secret: str, js_code: str, grant_type: str = Query()
    ) -> dict[str, Any]:
        if not js_code.startswith("ok-") or js_code in used:
            return {"errcode": 40029, "errmsg": "invalid code"}
        used.append(js_code)
        return {"openid": js_code[3:], "session_key": "sk"}

    async with serve(app) as url:
        wechat_login = gateway.app.state.logins.wechat
        wechat_login.appid, wechat_login.secret, wechat_login.base = "wx-app", "wx-secret", url
        yield used


async def test_a_patient_binds_wechat_with_a_verified_code(
    gateway: Gateway, wechat: list[str]
) -> None:
    login = await gateway.patient_login("13800138601")
    token = bearer(login["access_token"])

    bound = await gateway.client.put(BIND, json={"code": "ok-oWx-601"}, headers=token)
    assert bound.status_code == 200, bound.text
    assert bound.json() == {"wechat_login": True, "wechat_bound": True}
    assert wechat == ["ok-oWx-601"]  # exchanged with WeChat
    me = (await gateway.client.get("/v1/auth/me", headers=token)).json()
    assert (me["wechat_login"], me["wechat_bound"]) == (True, True)
    # the WeChat user now signs in to this very account
    again = await gateway.client.post("/v1/auth/login/wechat", json={"code": "ok-oWx-601"})
    assert again.status_code == 401  # a code is good once
    wechat.clear()
    again = await gateway.client.post("/v1/auth/login/wechat", json={"code": "ok-oWx-601"})
    assert again.json()["account"]["id"] == login["account"]["id"]

    replayed = await gateway.client.put(BIND, json={"code": "ok-oWx-601"}, headers=token)
    assert (replayed.status_code, replayed.json()["code"]) == (401, "wechat_code_invalid")
    invented = await gateway.client.put(BIND, json={"openid": "oWx-601"}, headers=token)
    assert invented.status_code == 422  # a code, never an openid


async def test_an_openid_bound_to_another_account_is_refused(
    gateway: Gateway, wechat: list[str]
) -> None:
    first = await gateway.patient_login("13800138602")
    second = await gateway.patient_login("13800138603")
    taken = await gateway.client.put(
        BIND, json={"code": "ok-oWx-602"}, headers=bearer(first["access_token"])
    )
    assert taken.status_code == 200, taken.text
    rebound = await gateway.client.put(
        BIND, json={"code": "ok-oWx-602x"}, headers=bearer(first["access_token"])
    )
    assert rebound.status_code == 200  # one's own account, to another WeChat user
    clash = await gateway.client.put(
        BIND, json={"code": "ok-oWx-602x"}, headers=bearer(second["access_token"])
    )
    assert clash.json()["code"] == "wechat_code_invalid"  # the code was used above
    wechat.clear()
    clash = await gateway.client.put(
        BIND, json={"code": "ok-oWx-602x"}, headers=bearer(second["access_token"])
    )
    assert (clash.status_code, clash.json()["code"]) == (409, "wechat_bound_elsewhere")
    me = (await gateway.client.get("/v1/auth/me", headers=bearer(second["access_token"]))).json()
    assert me["wechat_login"] is False


async def test_the_services_unverified_binding_is_closed_to_clients(gateway: Gateway) -> None:
    login = await gateway.patient_login("13800138604")
    token = bearer(login["access_token"])
    for path in ("/v1/notifications/me/wechat", "/v1/notifications//me/wechat/"):
        direct = await gateway.client.put(path, json={"openid": "oWx-forged-604"}, headers=token)
        assert (direct.status_code, direct.json()["code"]) == (403, "wechat_binding_unverified")
    me = (await gateway.client.get("/v1/auth/me", headers=token)).json()
    assert (me["wechat_login"], me["wechat_bound"]) == (False, False)
    staff = gateway.minter.mint("st-604", ["agent"], org_id="h1")
    refused = await gateway.client.put(BIND, json={"code": "ok-x"}, headers=bearer(staff))
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden_role")
