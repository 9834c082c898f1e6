"""The managers' live dashboard: a booking made elsewhere shows up on screen by itself."""

from __future__ import annotations

import re
import uuid

import httpx
from playwright.async_api import Page, expect

from devstack.demo import Demo
from devstack.demo.base import bearer, staff_token
from devstack.keys import DevSecrets
from devstack.system import System
from tests.e2e.console.console import check_screen, login

LIVE_TIMEOUT = 20_000  # ms: the outbox relay, Kafka, the gateway's stream, a refetch


async def book_by_phone(gw: httpx.AsyncClient, demo: Demo) -> dict[str, str]:
    """The hotline agent books a demo patient into a session they are not booked for yet."""
    agent = bearer(await staff_token(gw, demo.usernames["agent"]))
    for patient in reversed(demo.patients):
        for schedule in demo.schedules[1:]:
            answer = await gw.post(
                "/v1/appointments/appointments",
                headers={**agent, "Idempotency-Key": str(uuid.uuid4())},
                params={"reason": "dashboard test: a caller books"},
                json={"patient_id": patient["id"], "schedule_id": schedule},
            )
            if answer.status_code == 201:
                return dict(answer.json())
    raise AssertionError("no demo patient could be booked")


async def test_watch_the_dashboard_change_after_a_booking(
    page: Page, demo: Demo, system: System
) -> None:
    await login(page, demo, "admin")
    await page.goto("/console/#/dashboard")
    await expect(page.get_by_role("heading", level=1, name="运营看板")).to_be_visible()
    hotline = page.get_by_test_id("bookings-today-hotline")
    await expect(hotline).to_have_text(re.compile(r"^\d+$"))
    await expect(page.get_by_role("status").filter(has_text="实时更新")).to_have_text(
        "实时更新：已连接"
    )
    await check_screen(page, "dashboard")
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as gw:
        admin = bearer(await staff_token(gw, demo.usernames["admin"]))
        figures = await gw.get(
            "/v1/appointments/figures", params={"org_id": demo.hospital}, headers=admin
        )
        assert figures.status_code == 200, figures.text
        before = int(await hotline.inner_text())
        assert before == figures.json()["today"]["by_channel"]["hotline"]
        await page.evaluate("window.__dashboardNotReloaded = true")

        booked = await book_by_phone(gw, demo)
        assert booked["channel"] == "hotline"
        await expect(hotline).to_have_text(str(before + 1), timeout=LIVE_TIMEOUT)
        # the page was not reloaded, and the API agrees with the screen
        assert await page.evaluate("window.__dashboardNotReloaded === true")
        after = await gw.get(
            "/v1/appointments/figures", params={"org_id": demo.hospital}, headers=admin
        )
        assert after.json()["today"]["by_channel"]["hotline"] == before + 1
    total = page.get_by_test_id("kpi-bookings-today")
    await expect(total).to_have_text(str(after.json()["today"]["total"]))


async def test_the_alliance_admin_picks_an_organization_to_watch(
    page: Page, demo: Demo, system: System, dev_secrets: DevSecrets
) -> None:
    await page.goto("/console/")
    await page.get_by_label("用户名").fill(dev_secrets.admin_username)
    await page.get_by_label("密码").fill(dev_secrets.admin_password)
    await page.get_by_role("button", name="登录").click()
    await expect(page.get_by_role("button", name="退出登录")).to_be_visible()
    await page.goto("/console/#/dashboard")
    chooser = page.get_by_label("机构")
    await chooser.select_option(demo.clinic)
    live = page.get_by_role("status").filter(has_text="实时更新")
    await expect(live).to_have_text("实时更新：已连接")
    await expect(page.get_by_test_id("bookings-today-hotline")).to_have_text("0")
    await expect(page.get_by_test_id("kpi-bookings-today")).to_have_text("0")
    # an organization's admin may not watch another organization
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as gw:
        admin = bearer(await staff_token(gw, demo.usernames["admin"]))
        refused = await gw.get("/v1/console/changes", params={"org_id": demo.clinic}, headers=admin)
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden_org")
