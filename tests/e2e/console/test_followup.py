"""The hotline's follow-up calls in the console: the agent claims the next due call, asks
the questionnaire on the phone, records the outcome, and the next call follows."""

from __future__ import annotations

import httpx
from playwright.async_api import Page, expect

from devstack.demo import Demo
from devstack.demo.base import bearer, staff_token
from devstack.system import System
from tests.e2e.console.console import check_screen, login

REASON = {"x-access-reason": "e2e: check the follow-up call"}


DEMO_PARTS = ("followup",)  # what tests/e2e/console/conftest.py seeds


async def test_complete_a_follow_up_call(page: Page, demo: Demo, system: System) -> None:
    first, second = demo.extra["followup"]["due_tasks"]
    older, newer = demo.patients[0]["id"], demo.patients[1]["id"]  # discharged 5 and 4 days ago
    await login(page, demo, "agent")
    await page.goto("/console/#/followup")
    calls = page.get_by_role("table", name="本机构到期的随访电话")
    await expect(calls.get_by_role("link", name=older)).to_be_visible()
    await expect(calls.get_by_role("link", name=newer)).to_be_visible()
    await check_screen(page, "followup-call-list")

    await page.get_by_role("button", name="领取下一个电话").click()
    call = page.get_by_role("region", name="当前电话")
    await expect(call.get_by_role("link", name=older)).to_be_visible()
    # the patient is named (appointments' profile, masked phone), not only by id
    await expect(call).to_contain_text(
        f"{demo.patients[0]['name']} · {demo.patients[0]['phone'][:3]}"
    )
    await expect(page.get_by_role("region", name="随访计划")).to_contain_text("急性心梗出院随访")
    await expect(page.get_by_role("heading", name="出院后一般随访")).to_be_visible()

    # an answer missing: the API's error is shown, what was answered stays
    await page.get_by_role("radio", name="较好").check()
    await (
        page.get_by_role("group", name="出院后有没有出现新的不适")
        .get_by_role("radio", name="否")
        .check()
    )
    await page.get_by_label("有什么想问医生的吗").fill("复诊需要空腹吗")
    await page.get_by_label("备注").fill("患者本人接听，恢复良好")
    await page.get_by_role("button", name="记录", exact=True).click()
    await expect(page.get_by_role("alert")).to_contain_text("问卷答案有误")
    await expect(page.get_by_role("group", name="有没有按医嘱吃药")).to_contain_text("此题必答")
    await expect(page.get_by_role("radio", name="较好")).to_be_checked()
    await expect(page.get_by_label("有什么想问医生的吗")).to_have_value("复诊需要空腹吗")

    await page.get_by_role("radio", name="都按时吃").check()
    await check_screen(page, "followup-call")
    await expect(page.get_by_label("通话结果")).to_have_value("reached")
    await page.get_by_role("button", name="记录", exact=True).click()

    # the next due call follows: the other patient's
    await expect(page.get_by_role("status").filter(has_text="下一个任务如下")).to_be_visible()
    await expect(call.get_by_role("link", name=newer)).to_be_visible()

    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as gw:
        agent = {**bearer(await staff_token(gw, demo.usernames["agent"])), **REASON}
        done = (await gw.get(f"/v1/followup/tasks/{first}", headers=agent)).json()
        assert done["status"] == "done"
        assert done["outcome"] == "reached"
        [attempt] = done["attempts"]
        assert attempt["notes"] == "患者本人接听，恢复良好"
        answered = await gw.get(
            f"/v1/followup/questionnaire-responses/{attempt['response_id']}", headers=agent
        )
        assert answered.status_code == 200, answered.text
        response = answered.json()
        assert response["status"] == "completed"
        assert response["answers"] == {
            "feeling": "good",
            "new_symptoms": False,
            "medication": "all",
            "questions": "复诊需要空腹吗",
        }
        held = (await gw.get(f"/v1/followup/tasks/{second}", headers=agent)).json()
        assert held["claim"]["agent_id"] == demo.staff_ids["agent"]
