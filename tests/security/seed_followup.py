"""The authorization matrix's follow-up data: A's patient discharged from A's organization
``h1`` (an HL7 ADT over HTTP, as the HIS sends it), so A has a plan with a due call, an
answered questionnaire with its risk flag and a satisfaction survey; a second plan of A's
patient (its call and flag) and a plan of A's spare patient (its questionnaire left
unanswered) for the allowed callers' destructive calls; a discharge nobody is matched to;
a complaint raised by A's account, owned by h1's complaint desk (``matrix-agent``).

Followup learns A's patients from appointments' ``patient.registered`` events (the world
runs every service's workers on one topic prefix). The two further plans are started
through the service's own objects (the spare patient's national ID is not in the world);
the seed's jobs make their tasks due within a second.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI

from services.followup.bootstrap import Followup, built
from services.followup.plans import PlanStart
from services.followup.store import DISCHARGES, PLANS, RISK_FLAGS, SURVEYS, TASKS
from shared.ids import new_id
from shared.outbox import Tx
from shared.principal import Role
from tests.factories import make_national_id
from tests.support.kafka import wait_until

F = "/v1/followup"
ORG = "h1"
DESK_OWNER = "matrix-agent"  # h1's complaint desk: the owner of complaints patients raise
QUESTIONNAIRE = "post-pci-day7"
SAFE = {
    "chest_pain": False,
    "breathless": "none",
    "antiplatelet_daily": True,
    "bleeding": False,
    "puncture_swelling": "none",
}
# a moderate flag that asks appointments for no revisit (no booking in A's name)
BLEEDING = {**SAFE, "bleeding": True}
TEMPLATE = {
    "name": "matrix: after PCI",
    "org_id": ORG,
    "icd_prefix": "I21",
    "steps": [
        {
            "kind": "questionnaire",
            "day": 0,
            "title": "matrix check",
            "questionnaire_url": QUESTIONNAIRE,
        },
        {"kind": "call", "day": 0, "title": "matrix call"},
    ],
}
SPARE_TEMPLATE = {**TEMPLATE, "name": "matrix: spare", "icd_prefix": "Z98"}
HL7 = "x-application/hl7-v2+er7"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def adt(control_id: str, national_id: str, discharged_at: datetime) -> str:
    """An ADT^A03 (discharge) from h1's HIS: PID-3 an MRN and the national ID."""
    ids = f"MRN{control_id}^^^{ORG}^MR~{national_id}^^^CHN^NNCHN"
    when = discharged_at.astimezone(SHANGHAI).strftime("%Y%m%d%H%M%S")
    pv1 = ["PV1", "1", "I", f"CARD^301^2^{ORG}", "", "", "", "doc-1^Zhang^Wei"]
    pv1 += [""] * 11 + [f"V{control_id}"] + [""] * 16 + ["01"] + [""] * 8 + [when]
    segments = [
        f"MSH|^~\\&|HIS|{ORG}|CARELOOP|CL|20260310101500||ADT^A03^ADT_A03|{control_id}|P|2.5",
        "EVN|A03|20260310101400",
        f"PID|1||{ids}||王^小明||19800102|M",
        "|".join(pv1),
        "DG1|1||I21.9^Acute myocardial infarction^I10",
    ]
    return "\r".join(segments) + "\r"


async def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.url}: {response.text}"
    return response.json() if response.content else None


async def _discharge(
    client: httpx.AsyncClient, ctx: Followup, service: dict[str, str], national_id: str
) -> tuple[str, dict[str, Any]]:
    """Send one discharge; returns the intake message id and the discharge record."""
    control_id = f"M{new_id()[-10:]}"
    when = datetime.now(UTC) - timedelta(days=2)
    sent = await client.post(
        f"{F}/his/adt",
        content=adt(control_id, national_id, when),
        headers={**service, "content-type": HL7},
    )
    assert sent.status_code == 200, sent.text
    message_id = f"hl7:HIS|{ORG}:{control_id}"
    discharge = await ctx.db[DISCHARGES].find_one({"intake_id": message_id})
    assert discharge is not None, message_id
    return message_id, discharge


async def _tasks(ctx: Followup, plan_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The plan's questionnaire (sent: waiting for the answer) and its due call."""

    async def fallen_due() -> bool:
        found = await ctx.db[TASKS].find({"plan_id": plan_id}).sort("step").to_list(None)
        return [t["status"] for t in found] == ["waiting", "due"]

    await wait_until(fallen_due, timeout=30, what="the plan's tasks falling due")
    questionnaire, call = await ctx.db[TASKS].find({"plan_id": plan_id}).sort("step").to_list(None)
    return questionnaire, call


async def _answered(
    client: httpx.AsyncClient, ctx: Followup, a: dict[str, str], response_id: str
) -> str:
    """A answers the questionnaire (bleeding): its risk flag's id."""
    url = f"{F}/questionnaire-responses/{response_id}/answers"
    await _ok(await client.post(url, json={"answers": BLEEDING}, headers=a))
    flag = await ctx.db[RISK_FLAGS].find_one({"response_id": response_id})
    assert flag is not None, "A's answers raised no risk flag"
    return str(flag["_id"])


def _planned(patient_id: str, name: str) -> PlanStart:
    """A plan at h1 as from a discharge two days ago (the seed's template: tasks due now)."""
    return PlanStart(
        patient_id=patient_id,
        org_id=ORG,
        source="matrix",
        source_id=f"matrix-{name}-{new_id()}",
        started_at=datetime.now(UTC) - timedelta(days=2),
        department_id=f"{ORG}.CARD",
        diagnosis_codes=("I21.9",),
    )


async def _start(ctx: Followup, start: PlanStart) -> str:
    async def work(tx: Tx) -> str:
        return await ctx.plans.start(tx, start)

    return await ctx.outbox.transaction(work)


async def seed_followup(
    client: httpx.AsyncClient, app: FastAPI, headers: Any, ids: dict[str, str]
) -> set[str]:
    """Seed and fill ``ids``; returns A's follow-up ids (A's secrets)."""
    ctx = built(app.state.runtime)
    service, a = headers(Role.SERVICE, org=None), headers(Role.PATIENT)
    account, patient_id, spare_id = ids["account_id"], ids["patient_id"], ids["spare_patient_id"]
    desk = {"desk_owner_id": DESK_OWNER}
    settings = f"{F}/admin/complaint-settings/{ORG}"
    await _ok(await client.put(settings, json=desk, headers=service))
    templates = f"{F}/plan-templates"
    spare_template = await _ok(
        await client.post(templates, json=SPARE_TEMPLATE, headers=service), 201
    )
    template = await _ok(await client.post(templates, json=TEMPLATE, headers=service), 201)

    async def known() -> bool:  # from appointments' patient.registered events
        return (
            await ctx.patients.manages(account, patient_id)
            and await ctx.patients.manages(account, spare_id)
            and await ctx.patients.hash_of(patient_id) is not None
        )

    await wait_until(known, timeout=60, what="followup learning A's patients")
    message_id, discharge = await _discharge(client, ctx, service, ids["national_id"])
    plan_id = discharge["plan_id"]
    assert plan_id, f"A's discharge was not planned: {discharge}"
    _stranger_message, unmatched = await _discharge(client, ctx, service, make_national_id())
    assert unmatched["match_status"] == "awaiting_match", unmatched
    second_plan = await _start(ctx, _planned(patient_id, "second"))
    spare_plan = await _start(ctx, _planned(spare_id, "spare"))
    questionnaire, call = await _tasks(ctx, plan_id)
    spare_questionnaire, spare_call = await _tasks(ctx, second_plan)
    open_questionnaire, _call = await _tasks(ctx, spare_plan)  # left unanswered
    flag_id = await _answered(client, ctx, a, questionnaire["response_id"])
    spare_flag_id = await _answered(client, ctx, a, spare_questionnaire["response_id"])

    async def surveyed() -> bool:
        found = await ctx.db[SURVEYS].find_one({"patient_id": patient_id, "status": "sent"})
        return found is not None

    await wait_until(surveyed, timeout=30, what="A's satisfaction survey being sent")
    survey = await ctx.db[SURVEYS].find_one({"patient_id": patient_id, "status": "sent"})
    assert survey is not None
    complaint = {
        "org_id": ORG,
        "patient_id": patient_id,
        "category": "service_attitude",
        "description": "matrix: 护士态度",
    }
    raised = await _ok(await client.post(f"{F}/complaints", json=complaint, headers=a), 201)
    complaint_id = str(raised["complaint_id"])
    plans = await ctx.db[PLANS].find({"patient_id": {"$in": [patient_id, spare_id]}}).to_list(None)
    made = {
        "plan_id": plan_id,
        "second_plan_id": second_plan,
        "task_id": call["_id"],
        "questionnaire_task_id": questionnaire["_id"],
        "spare_task_id": spare_call["_id"],
        "response_id": questionnaire["response_id"],
        "spare_response_id": spare_questionnaire["response_id"],
        "open_response_id": open_questionnaire["response_id"],
        "flag_id": flag_id,
        "spare_flag_id": spare_flag_id,
        "a_discharge_id": discharge["_id"],
        "message_id": message_id,
        "survey_id": survey["_id"],
        "complaint_id": complaint_id,
    }
    ids.update(
        made,
        spare_plan_id=spare_plan,
        discharge_id=unmatched["_id"],  # matched by nobody yet: staff name the patient
        template_id=template["template_id"],
        spare_template_id=spare_template["template_id"],
        key=QUESTIONNAIRE,
    )
    return set(made.values()) | {str(p["_id"]) for p in plans}
