"""The hotline's screens: a call pops and opens the patient, booking on the patient's
behalf, a masked search that needs a reason, registering a caller with no record, and the
ban appeals queue."""

from __future__ import annotations

import random
import re
import secrets

import httpx
from playwright.async_api import Page, expect

from devstack.demo import Demo
from devstack.demo.base import bearer, minter, ok, staff_token
from devstack.demo.people import national_id
from devstack.keys import DevSecrets
from devstack.system import System
from shared.privacy import mask_name_ends, mask_phone
from tests.e2e.console.console import check_screen, login

REASON = "患者来电咨询"


DEMO_PARTS = ("hotline",)  # what tests/e2e/console/conftest.py seeds


async def take_calls(page: Page, extension: str) -> None:
    await page.get_by_label("分机号").fill(extension)
    await page.get_by_role("button", name="接听来电").click()
    await expect(page.get_by_text(f"分机 {extension}：已连接")).to_be_visible()


async def ring(
    system: System, dev_secrets: DevSecrets, demo: Demo, number: str, extension: str
) -> str:
    cti = bearer(minter(dev_secrets).mint("cti", ["service"]))
    call_id = f"call-{secrets.token_hex(4)}"
    body = {
        "call_id": call_id,
        "caller_number": number,
        "extension": extension,
        "org_id": demo.hospital,
    }
    async with httpx.AsyncClient(base_url=system.gateway_url) as gw:
        ok(await gw.post("/v1/appointments/staff/calls", headers=cti, json=body), 201)
    return call_id


async def give_reason(page: Page, reason: str = REASON) -> None:
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("原因").fill(reason)
    await dialog.get_by_role("button", name="确定").click()


async def test_a_call_pops_and_opens_the_patient(
    page: Page, demo: Demo, system: System, dev_secrets: DevSecrets
) -> None:
    patient = demo.patients[0]
    await login(page, demo, "agent")
    await take_calls(page, "8001")
    await ring(system, dev_secrets, demo, patient["phone"], "8001")
    pop = page.get_by_role("dialog", name="来电")
    await expect(pop).to_contain_text(mask_phone(patient["phone"]))
    await expect(pop).to_contain_text(mask_name_ends(patient["name"]))
    await expect(pop).not_to_contain_text(patient["phone"])
    await check_screen(page, "call-pop")
    await pop.get_by_role("button", name=f"打开患者 {mask_name_ends(patient['name'])}").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(patient["name"])
    await expect(pop).to_have_count(0)
    # the demo's hotline booking is among the upcoming appointments
    await expect(page.get_by_role("tabpanel")).to_contain_text("已预约")
    await check_screen(page, "patient-page")


async def test_book_on_the_patients_behalf(page: Page, demo: Demo, system: System) -> None:
    patient = demo.patients[2]
    await login(page, demo, "agent")
    await page.goto(f"/console/#/patients/{patient['id']}")
    await give_reason(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text(patient["name"])
    await page.get_by_role("button", name="为该患者预约").click()
    await page.get_by_label("科室", exact=True).select_option(label="心内科")
    await page.get_by_label("医生", exact=True).select_option(label="王建国 · 主任医师")
    sessions = page.get_by_role("table", name="可预约场次")
    await expect(sessions).to_contain_text("热线号源余量")
    await sessions.get_by_role("button", name=re.compile("^选择")).first.click()
    await expect(page.get_by_label("预约原因（记入审计）")).to_have_value(REASON)
    await check_screen(page, "booking")
    await page.get_by_role("button", name="确认预约").click()
    await expect(page.get_by_role("heading", name="预约成功")).to_be_visible()
    await expect(page.locator(".booking-done")).to_contain_text("王建国")
    async with httpx.AsyncClient(base_url=system.gateway_url) as gw:
        agent = bearer(await staff_token(gw, demo.usernames["agent"]))
        answer = await gw.get(
            f"/v1/appointments/staff/patients/{patient['id']}/appointments",
            headers=agent,
            params={"reason": "测试核对"},
        )
    booked = [a for a in ok(answer) if a["channel"] == "hotline" and a["status"] == "booked"]
    assert len(booked) == 1
    assert booked[0]["resource_name"] == "王建国"
    await page.get_by_role("link", name="返回患者页面").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(patient["name"])

    # move it to another session, then cancel it: both with a reason
    upcoming = page.get_by_role("region", name="即将就诊")
    await upcoming.get_by_role("button", name="改约").click()
    await upcoming.get_by_role("button", name=re.compile("^改到此场次")).first.click()
    await give_reason(page, "患者来电要求改约")
    await expect(page.get_by_role("status").last).to_contain_text("已改约到")
    await expect(page.get_by_role("region", name="历史预约")).to_contain_text("已改约")
    await page.get_by_role("region", name="即将就诊").get_by_role("button", name="取消预约").click()
    await give_reason(page, "患者来电取消")
    await expect(page.get_by_role("region", name="即将就诊")).to_contain_text("暂无数据")
    async with httpx.AsyncClient(base_url=system.gateway_url) as gw:
        answer = await gw.get(
            f"/v1/appointments/staff/patients/{patient['id']}/appointments",
            headers=agent,
            params={"reason": "测试核对"},
        )
    statuses = sorted(a["status"] for a in ok(answer) if a["channel"] == "hotline")
    assert statuses == ["cancelled", "rescheduled"]


async def test_search_needs_a_reason_and_shows_masked_data(page: Page, demo: Demo) -> None:
    patient = demo.patients[1]
    await login(page, demo, "agent")
    await page.get_by_role("navigation").get_by_role("link", name="患者查询").click()
    await page.get_by_label("查询方式").select_option("phone")
    await page.get_by_label("查询内容").fill(patient["phone"])
    await page.get_by_role("button", name="查询").click()
    await expect(page.get_by_role("alert")).to_contain_text("请填写查阅原因")
    await expect(page.get_by_label("查询内容")).to_have_value(patient["phone"])
    await page.get_by_label("查阅原因").fill(REASON)
    await page.get_by_role("button", name="查询").click()
    results = page.get_by_role("table", name="查询结果")
    await expect(results).to_contain_text(mask_phone(patient["phone"]))
    await expect(results).to_contain_text(mask_name_ends(patient["name"]))
    await expect(results).not_to_contain_text(patient["phone"])
    await expect(results).not_to_contain_text(patient["national_id"])
    await expect(page.get_by_role("alert")).to_be_hidden()
    await check_screen(page, "patient-search")
    # the reason given opens the patient without asking again
    await results.get_by_role("link", name="打开").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(patient["name"])
    await expect(page.get_by_role("dialog")).to_have_count(0)

    await page.get_by_role("navigation").get_by_role("link", name="停约申诉").click()
    await give_reason(page)
    await expect(page.get_by_role("heading", name="待处理的申诉")).to_be_visible()
    await check_screen(page, "appeals")


async def test_a_call_with_no_match_registers_the_caller(
    page: Page, demo: Demo, system: System, dev_secrets: DevSecrets
) -> None:
    rng = random.Random(demo.site)
    number = f"199{rng.randrange(10**8):08d}"
    person = national_id(rng)
    await login(page, demo, "agent")
    await take_calls(page, "8002")
    await ring(system, dev_secrets, demo, number, "8002")
    pop = page.get_by_role("dialog", name="来电")
    await expect(pop).to_contain_text("未找到该号码对应的患者")
    await pop.get_by_label("姓名").fill("孙丽")
    await pop.get_by_label("身份证号").fill(person)
    await pop.get_by_role("button", name="登记来电人").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("孙丽")
    patient_id = page.url.rsplit("/", 1)[-1]
    async with httpx.AsyncClient(base_url=system.gateway_url) as gw:
        agent = bearer(await staff_token(gw, demo.usernames["agent"]))
        answer = await gw.get(
            f"/v1/appointments/staff/patients/{patient_id}",
            headers=agent,
            params={"reason": "测试核对"},
        )
    registered = ok(answer)
    assert registered["name"] == "孙丽"
    assert registered["phone_masked"] == mask_phone(number)
    assert demo.hospital in registered["org_ids"]
