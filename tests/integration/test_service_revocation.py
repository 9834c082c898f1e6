"""Every service refuses a logged-out token and a token of an ended login, not only the
gateway: a token that reaches a service directly is checked against the same Redis keys
(shared/revocation.py, wired in shared/service.py)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import jwt
import pytest
from fastapi import APIRouter

from devstack.processes import free_port
from devstack.stack import EmbeddedStack
from services.gateway.app import create_app as create_gateway
from services.gateway.settings import GatewaySettings
from services.notifications.settings import NotificationsSettings
from shared.auth import CurrentPrincipal, TokenMinter
from shared.principal import Principal, Role
from shared.redis_client import create_redis
from shared.revocation import REVOKED, TokenRevocations, end_logins, jti_key, revoke_token
from shared.service import ServiceDefinition, create_service_app
from shared.settings import ServiceSettings
from tests.integration.gateway.conftest import ADMIN_PASSWORD, Gateway
from tests.integration.notifications.conftest import running_notifications
from tests.support.server import serve

pytestmark = pytest.mark.integration

ME = "/v1/revsvc/whoami"


def _router() -> APIRouter:
    router = APIRouter()

    @router.get(ME)
    async def whoami(principal: CurrentPrincipal) -> dict[str, str]:
        return {"subject": principal.subject}

    return router


@asynccontextmanager
async def running_service(settings: ServiceSettings) -> AsyncIterator[httpx.AsyncClient]:
    definition = ServiceDefinition(
        settings=settings, title="revocation test", routers=[_router()], run_workers=False
    )
    app = create_service_app(definition)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_a_service_refuses_revoked_and_ended_tokens(
    make_settings: Callable[..., ServiceSettings],
    minter: TokenMinter,
    stack: EmbeddedStack,
) -> None:
    settings = make_settings("revsvc", auth_revocation_cache_seconds=0)
    prefix = settings.redis_key_prefix
    redis = create_redis(stack.redis_url())
    try:
        async with running_service(settings) as client:
            token = minter.mint("pa-rev-1", ["patient"])
            assert (await client.get(ME, headers=_bearer(token))).status_code == 200
            jti = str(jwt.decode(token, options={"verify_signature": False})["jti"])
            await revoke_token(redis, prefix, jti, 600)  # what the gateway's logout writes
            refused = await client.get(ME, headers=_bearer(token))
            assert (refused.status_code, refused.json()["code"]) == (401, "token_invalid")

            other = minter.mint("pa-rev-2", ["patient"], issued_at=int(time.time()) - 5)
            assert (await client.get(ME, headers=_bearer(other))).status_code == 200
            await end_logins(redis, prefix, "pa-rev-2", 600)  # a password change, a disable
            ended = await client.get(ME, headers=_bearer(other))
            assert (ended.status_code, ended.json()["code"]) == (401, "token_revoked")
            later = minter.mint("pa-rev-2", ["patient"], issued_at=int(time.time()) + 1)
            assert (await client.get(ME, headers=_bearer(later))).status_code == 200
    finally:
        await redis.aclose()


async def test_a_service_answers_503_when_the_revocations_cannot_be_read(
    make_settings: Callable[..., ServiceSettings], minter: TokenMinter
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = make_settings("revsvc", auth_redis_url=dead, auth_revocation_cache_seconds=0)
    async with running_service(settings) as client:
        answer = await client.get(ME, headers=_bearer(minter.mint("pa-rev-3", ["patient"])))
    assert (answer.status_code, answer.json()["code"]) == (503, "auth_unavailable")


@asynccontextmanager
async def gateway_and_notifications(
    make_settings: Callable[..., ServiceSettings], jwt_keys: tuple[str, str], minter: TokenMinter
) -> AsyncIterator[Gateway]:
    notifications_settings = make_settings(
        "notifications",
        NotificationsSettings,
        quiet_hours_start="00:00",
        quiet_hours_end="00:00",
        auth_revocation_cache_seconds=0,
    )
    assert isinstance(notifications_settings, NotificationsSettings)
    async with running_notifications(notifications_settings, minter) as notifications:
        base = str(notifications.client.base_url).rstrip("/")
        settings = make_settings(
            "gateway",
            GatewaySettings,
            jwt_private_key=jwt_keys[0],
            service_urls={"notifications": base},
            bootstrap_admin_username="admin",
            bootstrap_admin_password=ADMIN_PASSWORD,
            otp_resend_seconds=0,
            rate_limits={"exempt_networks": ["127.0.0.0/8"]},
        )
        assert isinstance(settings, GatewaySettings)
        app = create_gateway(settings)
        async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield Gateway(client, settings, app, notifications, minter)


async def test_a_gateway_logout_and_ended_logins_reach_a_service_called_directly(
    make_settings: Callable[..., ServiceSettings], jwt_keys: tuple[str, str], minter: TokenMinter
) -> None:
    direct = "/v1/notifications/me/wechat"
    async with gateway_and_notifications(make_settings, jwt_keys, minter) as gateway:
        service = gateway.notifications.client
        login = await gateway.patient_login("13800138501")
        token = _bearer(login["access_token"])
        assert (await service.get(direct, headers=token)).status_code == 200
        out = await gateway.client.post(
            "/v1/auth/logout", json={"refresh_token": login["refresh_token"]}, headers=token
        )
        assert out.status_code == 204, out.text
        refused = await service.get(direct, headers=token)
        assert (refused.status_code, refused.json()["code"]) == (401, "token_invalid")

        second = await gateway.patient_login("13800138502")
        token = _bearer(second["access_token"])
        assert (await service.get(direct, headers=token)).status_code == 200
        await gateway.app.state.logins.sessions.end_all(second["account"]["id"])
        ended = await service.get(direct, headers=token)
        assert (ended.status_code, ended.json()["code"]) == (401, "token_revoked")


async def test_answers_are_cached_briefly_and_the_cache_is_bounded(stack: EmbeddedStack) -> None:
    redis = create_redis(stack.redis_url())
    prefix = f"cache{time.time_ns()}:"
    now = [0.0]
    revocations = TokenRevocations(
        redis, prefix=prefix, cache_seconds=5, cache_size=1, clock=lambda: now[0]
    )

    def principal(token_id: str) -> Principal:
        roles = frozenset({Role.PATIENT})
        return Principal(subject="pa-c", roles=roles, token_id=token_id, issued_at=100)

    try:
        assert await revocations.check(principal("a")) is None
        await revoke_token(redis, prefix, "a", 60)
        assert await revocations.check(principal("a")) is None  # remembered for 5 s
        now[0] = 5.0
        assert await revocations.check(principal("a")) == REVOKED  # ... and no longer
        await revoke_token(redis, prefix, "b", 60)
        assert await revocations.check(principal("b")) == REVOKED  # evicts "a": size 1
        await redis.delete(jti_key(prefix, "a"))
        assert await revocations.check(principal("a")) is None  # read again, not cached
    finally:
        await redis.aclose()
