"""The bed desk (a nurse) sees the waiting list (the patient's masked name, the wait) and
the open offers, assigns a free bed that fits a waiting admission notice, then confirms the
offer for the patient who phones; the API shows both."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.async_api import Page, expect

from devstack.demo import Demo
from devstack.demo.base import bearer, staff_token
from devstack.system import System
from tests.e2e.console.console import check_screen, login

A = "/v1/appointments"


DEMO_PARTS = ("beds",)  # what tests/e2e/console/conftest.py seeds


async def notice_of(system: System, demo: Demo, notice_id: str) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=system.gateway_url) as gw:
        nurse = bearer(await staff_token(gw, demo.usernames["nurse"]))
        answer = await gw.get(
            f"{A}/admission-notices/{notice_id}", headers=nurse, params={"reason": "e2e check"}
        )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def bed_desk_list(system: System, demo: Demo) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=system.gateway_url) as gw:
        nurse = bearer(await staff_token(gw, demo.usernames["nurse"]))
        query = {"org_id": demo.hospital, "reason": "e2e check"}
        answer = await gw.get(f"{A}/admission-notices", headers=nurse, params=query)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


async def test_assign_a_bed_and_confirm_it_for_the_patient(
    page: Page, demo: Demo, system: System
) -> None:
    seeded = demo.extra["beds"]
    notice_id = seeded["notices"][0]  # the urgent cardiology patient
    await login(page, demo, "nurse")
    await page.goto("/console/#/beds")
    await expect(page.get_by_role("heading", name="床位看板", level=1)).to_be_visible()
    await expect(page.get_by_role("heading", name="心内科五病区")).to_be_visible()
    await expect(page.get_by_role("heading", name="骨科三病区")).to_be_visible()
    waiting = page.get_by_role("table", name="等床患者")
    row = waiting.get_by_role("row").filter(has_text=notice_id)
    await expect(row).to_contain_text("紧急")
    listed = {n["id"]: n for n in await bed_desk_list(system, demo)}
    assert listed[notice_id]["status"] == "waiting"
    await expect(row).to_contain_text(str(listed[notice_id]["patient_name_masked"]))
    await expect(row).to_contain_text(re.compile(r"\d+小时\d+分"))
    offers = page.get_by_role("table", name="床位通知")
    seeded_offer = offers.get_by_role("row").filter(has_text=seeded["offered_notice"])
    await expect(seeded_offer).to_contain_text("已通知")
    await expect(seeded_offer.locator(".countdown")).to_be_visible()
    await check_screen(page, "bed-board")

    await row.get_by_role("button", name="分配床位").click()
    form = page.get_by_role("group", name=f"为住院证 {notice_id} 分配床位")
    bed_id = await form.get_by_label("床位").input_value()
    await form.get_by_role("button", name="分配并通知患者").click()
    offered = offers.get_by_role("row").filter(has_text=notice_id)
    await expect(offered).to_contain_text("已通知")
    await expect(waiting.get_by_role("row").filter(has_text=notice_id)).to_have_count(0)
    listed = {n["id"]: n for n in await bed_desk_list(system, demo)}
    assert listed[notice_id]["offer"]["bed_id"] == bed_id
    notice = await notice_of(system, demo, notice_id)
    assert notice["status"] == "offered"
    assert isinstance(notice["offer"], dict)
    assert notice["offer"]["status"] == "offered"
    assert notice["offer"]["bed_id"] == bed_id

    await offered.get_by_role("button", name="代患者确认").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("原因").fill("患者来电确认入院")
    await dialog.get_by_role("button", name="确定").click()
    await expect(offered).to_contain_text("已确认")
    notice = await notice_of(system, demo, notice_id)
    assert notice["status"] == "confirmed"
    assert isinstance(notice["offer"], dict)
    assert notice["offer"]["status"] == "confirmed"
