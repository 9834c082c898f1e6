"""``GET /v1/auth/me``: stored accounts, tokens without one (devstack.token), and the WeChat
binding that notifications holds."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from devstack.processes import free_port
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.auth import TokenMinter
from tests.integration.gateway.conftest import Gateway, bearer
from tests.support.server import serve

pytestmark = pytest.mark.integration

ME = "/v1/auth/me"


async def test_a_token_without_an_account_is_described_not_refused(gateway: Gateway) -> None:
    """What `python -m devstack.token acct-1 patient --org h1` mints: no account behind it."""
    patient = gateway.minter.mint("acct-1", ["patient"], org_id="h1")
    me = await gateway.client.get(ME, headers=bearer(patient))
    assert me.status_code == 200, me.text  # was 404 account_not_found
    assert me.json() == {
        "id": "acct-1",
        "kind": "patient",
        "roles": ["patient"],
        "org_id": "h1",
        "wechat_bound": False,
        "stored": False,
    }
    agent = await gateway.client.get(ME, headers=bearer(gateway.minter.mint("agent-7", ["agent"])))
    assert agent.json() == {
        "id": "agent-7",
        "kind": "staff",
        "roles": ["agent"],
        "org_id": None,
        "stored": False,
    }
    service = await gateway.client.get(
        ME, headers=bearer(gateway.minter.mint("his-sync", ["service"]))
    )
    assert (service.json()["kind"], service.json()["stored"]) == ("service", False)
    # the response model keeps each kind's keys in the order the dict had them
    assert list(me.json()) == ["id", "kind", "roles", "org_id", "wechat_bound", "stored"]
    assert list(agent.json()) == ["id", "kind", "roles", "org_id", "stored"]


async def test_binding_wechat_in_notifications_shows_in_me(gateway: Gateway) -> None:
    login = await gateway.patient_login("13800138301")
    token = bearer(login["access_token"])
    assert login["account"]["wechat_bound"] is False
    before = (await gateway.client.get(ME, headers=token)).json()
    assert list(before) == [
        "id",
        "kind",
        "roles",
        "phone",
        "wechat_login",
        "wechat_bound",
        "stored",
    ]
    assert (before["stored"], before["wechat_bound"], before["wechat_login"]) == (
        True,
        False,
        False,
    )

    # only the gateway binds (PUT /v1/auth/me/wechat, test_wechat_binding.py): as it does
    account_id = (await gateway.client.get(ME, headers=token)).json()["id"]
    bind = await gateway.notifications.client.put(
        f"/v1/notifications/accounts/{account_id}/wechat",
        json={"openid": "oWx-bound-301"},
        headers=gateway.notifications.service,
    )
    assert bind.status_code == 200, bind.text
    after = (await gateway.client.get(ME, headers=token)).json()
    assert after["wechat_bound"] is True  # was false: the gateway only knew WeChat logins
    assert after["wechat_login"] is False  # binding messages does not make a WeChat login
    again = await gateway.patient_login("13800138301")
    assert again["account"]["wechat_bound"] is True


async def test_me_says_unknown_when_notifications_cannot_answer(
    gateway_settings: Callable[..., GatewaySettings], minter: TokenMinter
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    settings = gateway_settings({"notifications": dead}, account_lookup_timeout_seconds=0.5)
    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as client:
        me = await client.get(ME, headers=bearer(minter.mint("acct-2", ["patient"])))
    assert me.status_code == 200, me.text
    assert me.json()["wechat_bound"] is None  # unknown, never a wrong false
