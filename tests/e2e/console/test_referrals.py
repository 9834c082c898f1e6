"""The referral desk in the console: the hospital's coordinator works the incoming list
(SLA clocks), accepts a case into cardiology (appointments then books it), meets a stale
view on rejecting without losing the typed reason, and the clinic's doctor sees the
referrals they sent."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
from playwright.async_api import Page, expect

from devstack.demo import Demo
from devstack.demo.base import bearer, staff_token
from devstack.system import System
from tests.e2e.console.console import check_screen, login

CASES = "/v1/referrals/cases"


DEMO_PARTS = ("referrals",)  # what tests/e2e/console/conftest.py seeds


async def coordinator(gw: httpx.AsyncClient, demo: Demo) -> dict[str, str]:
    return bearer(await staff_token(gw, demo.usernames["coord"]))


async def read_case(gw: httpx.AsyncClient, headers: dict[str, str], case_id: str) -> Any:
    answer = await gw.get(f"{CASES}/{case_id}", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer


async def wait_for_case(
    gw: httpx.AsyncClient, headers: dict[str, str], case_id: str, business_status: str
) -> dict[str, Any]:
    """The case as the API has it once it reaches ``business_status`` (polled, 20 s)."""
    loop = asyncio.get_running_loop()
    until = loop.time() + 20
    while True:
        case: dict[str, Any] = (await read_case(gw, headers, case_id)).json()
        if case["business_status"] == business_status or loop.time() > until:
            return case
        await asyncio.sleep(0.25)


async def test_the_coordinator_accepts_an_urgent_referral_and_it_is_booked(
    page: Page, demo: Demo, system: System
) -> None:
    urgent = demo.extra["referrals"]["urgent"]
    await login(page, demo, "coord")
    await page.get_by_role("navigation").get_by_role("link", name="转诊工作台").click()
    inbox = page.get_by_role("table", name="转入转诊，最早截止的在前")
    await expect(inbox.get_by_role("row")).to_have_count(4)  # the header and three cases
    rows = inbox.get_by_role("row")
    await expect(rows.nth(1)).to_contain_text("危急")  # the nearest deadline first
    await expect(inbox.locator(".countdown").first).to_have_text(re.compile(r"^0:\d\d:\d\d$"))
    await expect(page.get_by_role("heading", name="转诊通知")).to_be_visible()
    await check_screen(page, "referral-inbox")

    patient = demo.patients[1]["id"]
    await rows.filter(has_text=patient).get_by_role("link", name=re.compile("查看")).click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text(urgent)
    await expect(page.get_by_text("不稳定型心绞痛")).to_be_visible()
    await expect(page.get_by_role("table", name="候选机构排名")).to_contain_text(demo.hospital)
    await check_screen(page, "referral-case")

    await page.get_by_label("接收科室").select_option(f"{demo.hospital}.CARD")
    await page.get_by_label("接收备注（可选）").fill("已安排心内科专家门诊")
    await page.get_by_role("button", name="接收", exact=True).click()
    status = page.locator(".referrals-status")
    await expect(status).to_contain_text(re.compile("已接收|进行中"))
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as gw:
        desk = await coordinator(gw, demo)
        case = await wait_for_case(gw, desk, urgent, "booked")
        # the patient page's list (through the gateway) shows the case as it is now
        listed = await gw.get(
            f"/v1/referrals/patients/{patient}/referrals", headers=desk, params={"reason": "复核"}
        )
        assert listed.status_code == 200, listed.text
        assert [(i["referral_id"], i["business_status"]) for i in listed.json()["items"]] == [
            (urgent, "booked")
        ]
    assert case["status"] == "in-progress", str(case["booking"])[100:]
    await expect(status).to_contain_text("已预约")  # the view followed the booking
    await expect(page.get_by_text("已安排心内科专家门诊")).to_be_visible()
    assert case["receiving_department_id"] == f"{demo.hospital}.CARD"
    assert case["booking"]["appointment_id"]
    assert [n["text"] for n in case["notes"]] == ["已安排心内科专家门诊"]
    assert any(e["action"] == "accept" for e in case["history"])


async def test_rejecting_from_a_stale_view_keeps_the_reason_and_offers_a_reload(
    page: Page, demo: Demo, system: System
) -> None:
    routine = demo.extra["referrals"]["routine"]
    await login(page, demo, "coord")
    await page.goto(f"/console/#/referrals/{routine}")
    reject = page.get_by_role("button", name="拒绝", exact=True)
    await expect(reject).to_be_visible()

    # someone else changes the case meanwhile: held and resumed (two new versions)
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as gw:
        desk = await coordinator(gw, demo)
        for name, body in (("hold", {"reason": "等待患者补充资料"}), ("resume", {})):
            version = (await read_case(gw, desk, routine)).headers["etag"]
            changed = await gw.post(
                f"{CASES}/{routine}/{name}", headers={**desk, "If-Match": version}, json=body
            )
            assert changed.status_code == 200, changed.text

    await page.get_by_label("拒绝原因").select_option("no_capacity")
    reason = page.get_by_label("拒绝说明")
    await reason.fill("骨科本周床位已满，建议下周再转")
    await reject.click()
    await expect(page.get_by_role("alert")).to_contain_text("412")
    await expect(reason).to_have_value("骨科本周床位已满，建议下周再转")
    reload = page.get_by_role("button", name="重新加载转诊单")
    await reload.click()
    await expect(reload).to_be_hidden()
    await expect(reason).to_have_value("骨科本周床位已满，建议下周再转")
    await reject.click()
    await expect(page.locator(".referrals-status")).to_contain_text("已拒绝")

    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as gw:
        case = (await read_case(gw, await coordinator(gw, demo), routine)).json()
    assert case["status"] == "rejected"
    assert case["history"][-1]["reason"] == "骨科本周床位已满，建议下周再转"


async def test_the_clinic_doctor_sees_the_referrals_they_sent(page: Page, demo: Demo) -> None:
    await login(page, demo, "cdoctor")
    await page.get_by_role("navigation").get_by_role("link", name="转诊工作台").click()
    tab = page.get_by_role("tab", name="转出转诊")
    await expect(tab).to_have_attribute("aria-selected", "true")
    outgoing = page.get_by_role("table", name="转出转诊，最新的在前")
    await expect(outgoing.get_by_role("row")).to_have_count(4)
    for patient in demo.patients[:3]:
        await expect(outgoing).to_contain_text(patient["id"])
    await expect(outgoing).to_contain_text(demo.hospital)
    await check_screen(page, "referral-outgoing")
