"""The complaints board in the console: an agent takes a complaint on the hotline from the
patient page's link (a missing description is refused and nothing typed is lost), it opens
with its deadline in working days, and the agent hands it over to a named nurse."""

from __future__ import annotations

from datetime import datetime, time

import httpx
from playwright.async_api import Page, expect

from devstack.demo import Demo
from devstack.demo.base import bearer, staff_token
from devstack.system import System
from services.followup.domain.working_days import add_working_days
from tests.e2e.console.console import check_screen, login

REASON = {"x-access-reason": "e2e: check the complaint"}


DEMO_PARTS = ("complaints",)  # what tests/e2e/console/conftest.py seeds


async def test_take_a_complaint_and_hand_it_over(page: Page, demo: Demo, system: System) -> None:
    patient_id = demo.patients[3]["id"]
    await login(page, demo, "agent")
    await page.goto(f"/console/#/complaints?patient_id={patient_id}")
    await expect(page.get_by_label("患者编号")).to_have_value(patient_id)
    await expect(page.get_by_label("受理渠道")).to_have_value("hotline")
    await page.get_by_label("投诉类别").select_option("service_attitude")
    await page.get_by_label("投诉人诉求").fill("希望收费窗口道歉")

    # no description: refused, what was typed stays
    await page.get_by_role("button", name="提交受理").click()
    await expect(page.get_by_role("alert")).to_contain_text("description")
    await expect(page.get_by_label("投诉人诉求")).to_have_value("希望收费窗口道歉")
    await expect(page.get_by_label("投诉类别")).to_have_value("service_attitude")

    await page.get_by_label("投诉内容").fill("收费窗口工作人员态度生硬，拒绝解释费用明细")
    await page.get_by_role("button", name="提交受理").click()
    await expect(page.get_by_role("heading", name="投诉详情")).to_be_visible()
    complaint_id = page.url.rsplit("/", 1)[-1]
    facts = page.get_by_role("region", name="基本信息")
    await expect(facts).to_contain_text("服务态度")
    await expect(facts).to_contain_text("5 个工作日")
    await check_screen(page, "complaint")

    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as gw:
        agent = {**bearer(await staff_token(gw, demo.usernames["agent"])), **REASON}
        url = f"/v1/followup/complaints/{complaint_id}"
        taken = (await gw.get(url, headers=agent)).json()
        assert taken["channel"] == "hotline"
        assert taken["patient_id"] == patient_id
        assert taken["owner_id"] == taken["receiver_id"] == demo.staff_ids["agent"]
        assert taken["description"].endswith("希望收费窗口道歉")
        received = datetime.fromisoformat(taken["received_at"])
        due = add_working_days(received, 5, "Asia/Shanghai", time(17, 30))
        assert datetime.fromisoformat(taken["deadline_at"]) == due

        # the board: nearest deadline first, the new one among them
        await page.get_by_role("link", name="返回投诉列表").click()
        board = page.get_by_role("table", name="本机构投诉")
        await expect(board.get_by_role("link", name=complaint_id)).to_be_visible()
        await expect(board.get_by_role("row")).to_have_count(3)  # the demo's and this one
        await check_screen(page, "complaints-board")

        # hand it over to the ward's nurse, from the complaint's page
        await board.get_by_role("link", name=complaint_id).click()
        await page.get_by_label("接手人员（员工编号）").fill(demo.staff_ids["nurse"])
        await page.get_by_label("转交原因").fill("涉及病区收费，由护士长跟进")
        await page.get_by_role("button", name="转交", exact=True).click()
        await expect(page.get_by_text("仅当前负责人")).to_be_visible()
        moved = (await gw.get(url, headers=agent)).json()
        assert moved["owner_id"] == demo.staff_ids["nurse"]
        assert moved["receiver_id"] == demo.staff_ids["agent"]
        assert [h["type"] for h in moved["history"]] == ["received", "handed_over"]
        assert moved["history"][1]["data"]["reason"] == "涉及病区收费，由护士长跟进"
