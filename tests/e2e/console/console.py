"""What the console's browser tests do again and again: log in, check a screen with axe-core
and keep its screenshot."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, expect

from devstack.demo import Demo
from tests.e2e.console.conftest import artifacts_dir

# axe-core's impacts that fail a test; minor and moderate ones are reported in the output
FAILING_IMPACTS = {"serious", "critical"}


async def login(page: Page, demo: Demo, role: str) -> None:
    await page.goto("/console/")
    await page.get_by_label("用户名").fill(demo.usernames[role])
    await page.get_by_label("密码").fill(demo.password)
    await page.get_by_role("button", name="登录").click()
    await expect(page.get_by_role("button", name="退出登录")).to_be_visible()


async def check_screen(page: Page, name: str) -> list[dict[str, Any]]:
    """Keep a screenshot of the screen and fail on serious accessibility violations."""
    await page.screenshot(path=str(artifacts_dir() / f"{name}.png"), full_page=True)
    results = await Axe().run(page)
    violations = results.response["violations"]
    failing = [v for v in violations if v.get("impact") in FAILING_IMPACTS]
    assert not failing, f"{name}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
        for v in failing
    )
    return list(violations)
