"""Staff log in to the console, switch the language, and log out: the login ends."""

from __future__ import annotations

import httpx
from playwright.async_api import Page, expect

from devstack.demo import Demo
from devstack.system import System
from tests.e2e.console.console import check_screen, login


async def test_a_wrong_password_is_told_and_the_username_stays(page: Page, demo: Demo) -> None:
    await page.goto("/console/")
    await check_screen(page, "login")
    await page.get_by_label("用户名").fill(demo.usernames["agent"])
    await page.get_by_label("密码").fill("not-the-password")
    await page.get_by_role("button", name="登录").click()
    await expect(page.get_by_role("alert")).to_contain_text("用户名或密码错误")
    await expect(page.get_by_label("用户名")).to_have_value(demo.usernames["agent"])


async def test_log_in_switch_language_and_log_out(page: Page, demo: Demo, system: System) -> None:
    await login(page, demo, "agent")
    token = await page.evaluate(
        "JSON.parse(sessionStorage.getItem('careloop.console.session')).access_token"
    )
    await page.get_by_role("button", name="切换语言").click()
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()
    await page.get_by_role("button", name="Switch language").click()
    await page.get_by_role("button", name="退出登录").click()
    await expect(page.get_by_role("status")).to_contain_text("您已退出登录")
    assert await page.evaluate("sessionStorage.getItem('careloop.console.session')") is None
    # the login ended on the server too: its token is refused
    async with httpx.AsyncClient(base_url=system.gateway_url) as gw:
        answer = await gw.get("/v1/auth/me", headers={"authorization": f"Bearer {token}"})
    assert answer.status_code == 401


async def test_the_console_is_served_from_the_gateway_without_a_cdn(system: System) -> None:
    async with httpx.AsyncClient(base_url=system.gateway_url) as gw:
        page = await gw.get("/console/")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "http" not in page.text.split("<body>")[0].replace("http-equiv", "")
        missing = await gw.get("/console/assets/..%2F..%2Fapp.py")
        assert missing.status_code == 404
