"""The gateway in-process on a real port, with a real notifications service behind it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from services.notifications.settings import NotificationsSettings
from shared.auth import TokenMinter
from shared.privacy import mask_phone
from shared.settings import ServiceSettings
from tests.integration.notifications.conftest import NotificationsApi, running_notifications
from tests.support.server import serve

ADMIN_PASSWORD = "Adm1n-Passw0rd!"


@dataclass
class Gateway:
    client: httpx.AsyncClient
    settings: GatewaySettings
    app: FastAPI
    notifications: NotificationsApi
    minter: TokenMinter
    used_codes: list[str] = field(default_factory=list)

    async def ask_code(self, phone: str) -> httpx.Response:
        return await self.client.post("/v1/auth/otp", json={"phone": phone})

    async def code_for(self, phone: str) -> str:
        """The newest login code texted to ``phone`` (the sandbox keeps what it sent)."""
        masked = mask_phone(phone)
        sent = await self.notifications.wait_for_sandbox(
            len([c for c in self.used_codes if c.startswith(masked)]) + 1,
            kind="auth.login_code",
            address_masked=masked,
        )
        body = str(sent[-1]["body"])
        found = re.search(r"(?:验证码|code is )(\d{4,8})", body)
        assert found, body
        code = found.group(1)
        self.used_codes.append(f"{masked}:{code}")
        return code

    async def patient_login(self, phone: str) -> dict[str, Any]:
        asked = await self.ask_code(phone)
        assert asked.status_code == 202, asked.text
        code = await self.code_for(phone)
        login = await self.client.post("/v1/auth/login/otp", json={"phone": phone, "code": code})
        assert login.status_code == 200, login.text
        return dict(login.json())

    async def staff_login(self, username: str, password: str) -> httpx.Response:
        return await self.client.post(
            "/v1/auth/login/staff", json={"username": username, "password": password}
        )

    async def admin_token(self) -> str:
        response = await self.staff_login("admin", ADMIN_PASSWORD)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


# One test address and httpx's User-Agent would meet per-address budgets and the slow lane;
# login tests send more codes per phone than the default budget (test_front_door_limits.py
# runs the real budgets through the gateway).
TEST_RATE_LIMITS: dict[str, Any] = {
    "exempt_networks": ["127.0.0.0/8"],
    "login_code": {"per_key": {"phone": {"capacity": 100, "window_seconds": 900}}},
}


@pytest.fixture
def gateway_settings(
    make_settings: Callable[..., ServiceSettings], jwt_keys: tuple[str, str]
) -> Callable[..., GatewaySettings]:
    def build(service_urls: dict[str, str], **overrides: Any) -> GatewaySettings:
        values: dict[str, Any] = {
            "jwt_private_key": jwt_keys[0],
            "service_urls": service_urls,
            "bootstrap_admin_username": "admin",
            "bootstrap_admin_password": ADMIN_PASSWORD,
            "otp_resend_seconds": 0,
            "rate_limits": TEST_RATE_LIMITS,
            **overrides,
        }
        settings = make_settings("gateway", GatewaySettings, **values)
        assert isinstance(settings, GatewaySettings)
        return settings

    return build


@pytest.fixture
async def gateway(
    gateway_settings: Callable[..., GatewaySettings],
    make_settings: Callable[..., ServiceSettings],
    minter: TokenMinter,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Gateway]:
    overrides: dict[str, Any] = getattr(request, "param", {})
    notifications_settings = make_settings(
        "notifications", NotificationsSettings, quiet_hours_start="00:00", quiet_hours_end="00:00"
    )
    assert isinstance(notifications_settings, NotificationsSettings)
    async with running_notifications(notifications_settings, minter) as notifications:
        base = str(notifications.client.base_url).rstrip("/")
        settings = gateway_settings({"notifications": base}, **overrides)
        app = create_app(settings)
        async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield Gateway(client, settings, app, notifications, minter)
