"""The dispatcher (a coordinator) sees the porters on duty with their load, reassigns an open
escort to the on-duty nurse (chosen by name) with a reason; the nurse's load goes from 0 to
1; the porter (the demo nurse) sees it as the next job and accepts it."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.async_api import Page, expect

from devstack.demo import Demo
from devstack.demo.base import bearer, staff_token
from devstack.system import System
from tests.e2e.console.console import check_screen, login

R = "/v1/referrals"


DEMO_PARTS = ("transport",)  # what tests/e2e/console/conftest.py seeds


async def as_staff(system: System, demo: Demo, key: str, path: str, **query: str) -> Any:
    async with httpx.AsyncClient(base_url=system.gateway_url) as gw:
        token = bearer(await staff_token(gw, demo.usernames[key]))
        params = {"reason": "e2e check", **query}
        answer = await gw.get(path, headers=token, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_dispatch_an_escort_and_the_porter_takes_the_first_step(
    page: Page, demo: Demo, system: System
) -> None:
    seeded = demo.extra["transport"]
    transport_id, nurse_id = seeded["transport_id"], seeded["nurse_porter"]
    await login(page, demo, "coord")
    await page.goto("/console/#/transport")
    board = page.get_by_role("table", name="进行中的转运")
    row = board.get_by_role("row").filter(has_text=transport_id)
    await expect(row).to_contain_text(seeded["other_porter"])
    await expect(row.locator(".countdown").first).to_have_text(re.compile(r"^\d+:\d\d:\d\d$"))
    await expect(board.get_by_role("row").filter(has_text="未指派")).to_have_count(1)
    porters = page.get_by_role("table", name="陪检员负荷")
    nurse_row = porters.get_by_role("row").filter(has_text=nurse_id)
    await expect(nurse_row).to_contain_text("在岗")
    await expect(nurse_row.get_by_role("cell").last).to_have_text("0")
    await check_screen(page, "transport-board")

    await row.get_by_role("button", name="改派").click()
    form = page.get_by_role("group", name=f"指派转运单 {transport_id}")
    nurse_name = f"{demo.site} nurse"
    choice = form.get_by_label("陪检员", exact=True)
    await choice.select_option(value=nurse_id)
    await expect(choice.locator("option:checked")).to_contain_text(nurse_name)
    await form.get_by_label("指派原因").fill("王师傅在手术室，改派病区护士")
    await form.get_by_role("button", name="确认指派").click()
    await expect(row).to_contain_text(nurse_id)
    after = await as_staff(system, demo, "coord", f"{R}/transports/{transport_id}")
    assert after["porter_id"] == nurse_id
    assert after["state"] == "assigned"
    await expect(nurse_row.get_by_role("cell").last).to_have_text("1")
    roster = await as_staff(system, demo, "coord", f"{R}/porters", org_id=demo.hospital)
    loads = {p["porter_id"]: p["load"] for p in roster["items"]}
    assert loads[nurse_id] == 1

    await page.get_by_role("button", name="退出登录").click()
    await expect(page.get_by_label("用户名")).to_be_visible()  # the logout has ended
    await login(page, demo, "nurse")
    await page.goto("/console/#/porter")
    card = page.locator(".job-card")
    await expect(card).to_contain_text(transport_id)
    await expect(page.get_by_role("button", name="接单出发")).to_be_enabled()
    await check_screen(page, "porter")
    await page.get_by_role("button", name="接单出发").click()
    await expect(card).to_contain_text("前往中")
    mine = await as_staff(system, demo, "nurse", f"{R}/porters/me/next")
    assert mine["next"]["transport_id"] == transport_id
    assert mine["next"]["state"] == "en_route"
