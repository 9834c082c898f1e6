"""Logging in through the running system, as the README shows: a patient and a staff member."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from devstack.keys import DevSecrets
from devstack.system import System
from tests.factories import make_phone

pytestmark = pytest.mark.e2e


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_staff_and_patients_log_in_and_use_the_api(
    system: System, dev_secrets: DevSecrets
) -> None:
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=20) as gw:
        staff = await gw.post(
            "/v1/auth/login/staff",
            json={"username": dev_secrets.admin_username, "password": dev_secrets.admin_password},
        )
        assert staff.status_code == 200, staff.text
        admin = bearer(staff.json()["access_token"])
        assert staff.json()["account"]["roles"] == ["alliance_admin"]

        phone = make_phone()
        asked = await gw.post("/v1/auth/otp", json={"phone": phone})
        assert asked.status_code == 202, asked.text
        code = ""
        for _ in range(100):  # the sandbox SMS provider keeps what it sent (admins may read it)
            sent = await gw.get(
                "/v1/notifications/sandbox/deliveries",
                params={"kind": "auth.login_code", "reason": "e2e login check", "limit": 500},
                headers=admin,
            )
            assert sent.status_code == 200, sent.text
            mine = [
                d for d in sent.json() if d["address_masked"] == phone[:3] + "****" + phone[-4:]
            ]
            if mine:
                found = re.search(r"验证码(\d+)", mine[-1]["body"])
                assert found
                code = found.group(1)
                break
            await asyncio.sleep(0.1)
        assert code, "no login code was texted"

        login = await gw.post("/v1/auth/login/otp", json={"phone": phone, "code": code})
        assert login.status_code == 200, login.text
        patient = bearer(login.json()["access_token"])
        inbox = await gw.get("/v1/notifications/inbox", headers=patient)
        assert inbox.status_code == 200, inbox.text
        staff_only = await gw.get("/v1/appointments/ops/outbox", headers=patient)
        assert staff_only.status_code == 403  # the service checks the role again

        out = await gw.post("/v1/auth/logout", headers=patient)
        assert out.status_code == 204
        assert (await gw.get("/v1/notifications/inbox", headers=patient)).status_code == 401
