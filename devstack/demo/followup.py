"""Demo data: followup (see devstack/demo/__init__.py).

The hospital's cardiology plan after a heart attack (a day-3 call that asks the general
questionnaire on the phone, a day-30 call); two demo patients discharged over HL7 (ADT^A03
over HTTP, as the HIS sends it) a few days ago, so their day-3 calls are due now on the
hotline's call list; and (``seed_complaints``) one open complaint the demo agent took on
the hotline.

The followup service learns patients from appointments' ``patient.registered`` events and
falls the tasks due through timed jobs, both asynchronously: the seed polls the API for the
plans and the due calls (bounded).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from devstack.demo.base import Demo, bearer, minter, ok, staff_token
from devstack.keys import DevSecrets

F = "/v1/followup"
SHANGHAI = ZoneInfo("Asia/Shanghai")
REASON = {"x-access-reason": "demo: follow-up calls"}
WAIT_SECONDS = 90.0


def hl7_time(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y%m%d%H%M%S")


def discharge_message(
    org_id: str, patient: dict[str, Any], control_id: str, discharged_at: datetime
) -> str:
    """An ADT^A03 as a HIS sends it: PID-3 with the MRN and the national ID, PV1-45 the
    discharge time, DG1 an acute myocardial infarction."""
    family, given = patient["name"][:1], patient["name"][1:]
    stamp = hl7_time(discharged_at)
    pv1 = ["PV1", "1", "I", f"CARD^301^2^{org_id}", "", "", "", "D1^王^建国"]
    pv1 += [""] * 11 + [f"V-{control_id}"] + [""] * 16 + ["01"] + [""] * 7 + ["", stamp]
    segments = [
        f"MSH|^~\\&|HIS|{org_id}|CARELOOP|CL|{stamp}||ADT^A03^ADT_A03|{control_id}|P|2.5",
        f"EVN|A03|{stamp}",
        f"PID|1||MRN{control_id}^^^{org_id}^MR~{patient['national_id']}^^^CHN^NNCHN"
        f"||{family}^{given}",
        "|".join(pv1),
        "DG1|1||I21.9^急性心肌梗死^I10",
    ]
    return "\r".join(segments) + "\r"


async def _until(what: str, probe: Any) -> Any:
    """Poll ``probe()`` (None: not yet) for at most WAIT_SECONDS."""
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while True:
        found = await probe()
        if found is not None:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"demo followup: {what} did not happen in {WAIT_SECONDS:.0f} s")
        await asyncio.sleep(0.5)


async def seed_followup(gw: httpx.AsyncClient, secrets: DevSecrets, demo: Demo) -> None:
    h = demo.hospital
    admin = bearer(await staff_token(gw, demo.usernames["admin"]))
    agent = {**bearer(await staff_token(gw, demo.usernames["agent"])), **REASON}
    his = bearer(minter(secrets).mint("his-sync", ["service"]))

    template = ok(
        await gw.post(
            f"{F}/plan-templates",
            headers=admin,
            json={
                "name": "急性心梗出院随访",
                "org_id": h,
                "department_id": f"{h}.CARD",
                "icd_prefix": "I21",
                "steps": [
                    {
                        "kind": "call",
                        "day": 3,
                        "at": "09:00",
                        "title": "出院第3天电话随访",
                        "questionnaire_url": "discharge-general",
                        "priority": "high",
                    },
                    {"kind": "call", "day": 30, "at": "09:00", "title": "出院30天电话随访"},
                ],
            },
        ),
        201,
    )

    # two patients went home a few days ago: their day-3 calls are due (the older first)
    now = datetime.now(UTC)
    discharged = list(zip(demo.patients[:2], (5, 4), strict=True))
    for n, (patient, days_ago) in enumerate(discharged):
        control_id = f"{demo.site}-A03-{n}"
        message = discharge_message(h, patient, control_id, now - timedelta(days=days_ago))
        answer = await gw.post(
            f"{F}/his/adt",
            content=message.encode(),
            headers={**his, "content-type": "x-application/hl7-v2+er7"},
        )
        if answer.status_code != 200 or "MSA|AA|" not in answer.text:
            raise RuntimeError(f"demo followup: ADT^A03 refused: {answer.status_code}")

    plans: dict[str, str] = {}
    for patient, _days in discharged:

        async def plan_of(patient_id: str = patient["id"]) -> str | None:
            answer = await gw.get(f"{F}/patients/{patient_id}/plans", headers=agent)
            if answer.status_code != 200 or not answer.json()["items"]:
                return None
            return str(answer.json()["items"][0]["plan_id"])

        plans[patient["id"]] = await _until("the follow-up plan", plan_of)

    async def due_calls() -> list[str] | None:
        items = ok(await gw.get(f"{F}/call-list", headers=agent))["items"]
        due = [t["task_id"] for t in items if t["plan_id"] in plans.values()]
        return due if len(due) == len(plans) else None

    tasks = await _until("the due calls", due_calls)

    demo.extra["followup"] = {
        "template_id": template["template_id"],
        "plans": plans,
        "due_tasks": tasks,
    }


async def seed_complaints(gw: httpx.AsyncClient, secrets: DevSecrets, demo: Demo) -> None:
    """One open complaint the demo agent took on the hotline (a part of its own: the
    complaints board needs no discharge). Followup learns the patient from appointments'
    event: a refusal naming the patient is asked again (nothing was created)."""
    agent = {**bearer(await staff_token(gw, demo.usernames["agent"])), **REASON}
    body = {
        "channel": "hotline",
        "patient_id": demo.patients[2]["id"],
        "category": "waiting_registration",
        "severity": "medium",
        "complexity": "investigation",
        "departments_involved": [f"{demo.hospital}.CARD"],
        "description": "患者来电：心内科专家号候诊超过两小时，无人告知延误原因。\n"
        "诉求：希望医院说明原因并改进叫号提示。",
        "contact_preference": "phone",
    }

    async def taken() -> dict[str, Any] | None:
        answer = await gw.post(f"{F}/complaints", headers=agent, json=body)
        if answer.status_code in (403, 404, 422) and "patient" in answer.text:
            return None
        return dict(ok(answer, 201))

    complaint = await _until("the complaint", taken)
    demo.extra["complaints"] = {"complaint_id": complaint["complaint_id"]}
