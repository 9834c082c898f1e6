"""Risk flags: a risky answer flags the patient (urgent ones alert the doctor), asks
appointments for a revisit, raises the plan's risk so the patient's calls come first; the
doctors' and nurses' list keeps to their organization, and acknowledging measures the time
it took; appointments' reply to the revisit is recorded on the flag."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.appointments.events import AppointmentBooked, BookingRejected
from shared.events import make_event
from shared.principal import Role
from tests.integration.followup.conftest import ORG, PREFIX, FollowupApi
from tests.integration.followup.test_questionnaires import (
    CHEST_PAIN,
    QUESTIONNAIRE_TEMPLATE,
    Sent,
    answers_url,
    discharge,
    sent_questionnaire,
)
from tests.support.kafka import wait_until

pytestmark = pytest.mark.integration


def doctor(followup: FollowupApi, name: str = "doc-1", org: str = ORG) -> dict[str, str]:
    return {**followup.token(name, Role.DOCTOR, org=org), "x-access-reason": "risk review"}


async def answered_with_chest_pain(followup: FollowupApi) -> Sent:
    sent = await sent_questionnaire(followup)
    answered = await followup.client.post(
        answers_url(sent.response_id),
        json={"answers": CHEST_PAIN},
        headers=followup.token(sent.account_id),
    )
    assert answered.status_code == 200, answered.text
    return sent


async def test_chest_pain_flags_the_patient_asks_a_revisit_and_puts_their_calls_first(
    followup: FollowupApi,
) -> None:
    # another patient, discharged earlier: their call is longer overdue
    _other, _account, other_plan = await discharge(followup, QUESTIONNAIRE_TEMPLATE, days_ago=3)
    other_call = (await followup.tasks_of(other_plan))[1]
    await followup.wait_task(other_call["_id"], "due")
    sent = await sent_questionnaire(followup, QUESTIONNAIRE_TEMPLATE)
    call = (await followup.tasks_of(sent.plan_id))[1]
    await followup.wait_task(call["_id"], "due")
    before = await followup.client.get(f"{PREFIX}/call-list", headers=followup.agent())
    assert [t["task_id"] for t in before.json()["items"]] == [other_call["_id"], call["_id"]]

    answered = await followup.client.post(
        answers_url(sent.response_id),
        json={"answers": CHEST_PAIN},
        headers=followup.token(sent.account_id),
    )

    assert answered.status_code == 200, answered.text
    [flag] = (
        await followup.ctx.db["risk_flags"].find({"response_id": sent.response_id}).to_list(None)
    )
    assert flag["rule_id"] == "chest_pain"
    assert (flag["level"], flag["urgent"], flag["status"]) == ("urgent", True, "open")
    assert (flag["task_id"], flag["plan_id"], flag["org_id"]) == (
        sent.task["_id"],
        sent.plan_id,
        ORG,
    )
    [event] = await followup.outbox("careloop.followup.risk.flagged")
    assert event["flag_id"] == flag["_id"]
    assert (event["urgent"], event["level"], event["revisit"]) == (True, "urgent", True)
    assert event["doctor_id"] == "h1.doc-1"
    [ask] = await followup.outbox("careloop.followup.revisit_requested")
    assert (ask["reason"], ask["flag_id"]) == ("risk_flag", flag["_id"])
    assert ask["revisit_request_id"] == flag["revisit_request_id"]
    plan = await followup.ctx.plans.get(sent.plan_id)
    assert plan["risk_level"] == "urgent"
    after = await followup.client.get(f"{PREFIX}/call-list", headers=followup.agent())
    assert [t["task_id"] for t in after.json()["items"]] == [call["_id"], other_call["_id"]]
    assert after.json()["items"][0]["risk_level"] == "urgent"


async def test_the_flag_list_keeps_to_the_organization_and_acknowledging_is_timed(
    followup: FollowupApi,
) -> None:
    sent = await answered_with_chest_pain(followup)
    url = f"{PREFIX}/risk-flags"

    mine = await followup.client.get(url, headers=doctor(followup))
    theirs = await followup.client.get(url, headers=doctor(followup, "doc-9", org="h2"))
    urgent_only = await followup.client.get(
        url, params={"level": "moderate"}, headers=doctor(followup)
    )
    [flag] = mine.json()["items"]
    ack = f"{url}/{flag['flag_id']}/acknowledge"
    foreign = await followup.client.post(
        ack, json={"note": "看过"}, headers=doctor(followup, "doc-9", org="h2")
    )
    by_agent = await followup.client.post(ack, json={}, headers=followup.agent())
    done = await followup.client.post(ack, json={"note": "已电话联系"}, headers=doctor(followup))
    again = await followup.client.post(ack, json={}, headers=doctor(followup))
    missing = await followup.client.post(
        f"{url}/nope/acknowledge", json={}, headers=doctor(followup)
    )

    assert mine.status_code == 200, mine.text
    assert flag["patient_id"] == sent.patient_id
    assert theirs.json()["items"] == []
    assert urgent_only.json()["items"] == []
    assert foreign.status_code == 403
    assert by_agent.status_code == 403
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["status"], body["acknowledged_by"], body["note"]) == (
        "acknowledged",
        "doc-1",
        "已电话联系",
    )
    assert body["response_seconds"] >= 0
    assert again.status_code == 409
    assert again.json()["code"] == "flag_already_acknowledged"
    assert missing.status_code == 404
    still_open = await followup.client.get(url, headers=doctor(followup))
    assert still_open.json()["items"] == []
    seen = await followup.client.get(
        url, params={"status": "acknowledged"}, headers=doctor(followup)
    )
    assert [f["flag_id"] for f in seen.json()["items"]] == [flag["flag_id"]]
    audited = await followup.ctx.db["audit_log"].count_documents(
        {"action": "followup.risk_flags.read", "actor_id": "doc-1"}
    )
    assert audited >= 1


async def test_a_rejected_revisit_keeps_the_flag_open_and_first(followup: FollowupApi) -> None:
    first = await answered_with_chest_pain(followup)
    second = await answered_with_chest_pain(followup)
    flags = followup.ctx.db["risk_flags"]
    flag: dict[str, Any] | None = await flags.find_one({"response_id": first.response_id})
    assert flag is not None
    rejected = BookingRejected(
        patient_id=first.patient_id,
        schedule_id=None,
        code="no_reserved_slot",
        reason="no reserved number left",
        revisit_request_id=flag["revisit_request_id"],
    )

    await followup.publish(
        make_event(rejected, source="appointments", subject=first.patient_id), "appointments"
    )

    async def recorded() -> bool:
        doc = await flags.find_one({"_id": flag["_id"]})
        return doc is not None and (doc.get("revisit") or {}).get("status") == "rejected"

    await wait_until(recorded, timeout=30, what="the rejected revisit on the flag")
    doc = await flags.find_one({"_id": flag["_id"]})
    assert doc is not None
    assert doc["revisit"] == {"status": "rejected", "code": "no_reserved_slot"}
    assert (doc["status"], doc["needs_attention"]) == ("open", True)
    listed = await followup.client.get(f"{PREFIX}/risk-flags", headers=doctor(followup))
    order = [f["response_id"] for f in listed.json()["items"]]
    assert order == [first.response_id, second.response_id]


async def test_a_booked_revisit_is_recorded_on_the_flag(followup: FollowupApi) -> None:
    sent = await answered_with_chest_pain(followup)
    flags = followup.ctx.db["risk_flags"]
    flag = await flags.find_one({"response_id": sent.response_id})
    assert flag is not None
    booked = AppointmentBooked(
        appointment_id="appt-1",
        patient_id=sent.patient_id,
        account_id=sent.account_id,
        org_id=ORG,
        department_id="CARD",
        department_name="心内科",
        resource_id="doc-1",
        resource_name="张医生",
        resource_kind="doctor",
        clinic_date=date.today(),
        session="am",
        number=3,
        starts_at=datetime.now(UTC) + timedelta(days=2),
        ends_at=datetime.now(UTC) + timedelta(days=2, minutes=15),
        channel="referral",
        revisit_request_id=flag["revisit_request_id"],
    )

    await followup.publish(
        make_event(booked, source="appointments", subject=sent.patient_id), "appointments"
    )

    async def recorded() -> bool:
        doc = await flags.find_one({"_id": flag["_id"]})
        return doc is not None and (doc.get("revisit") or {}).get("status") == "booked"

    await wait_until(recorded, timeout=30, what="the booked revisit on the flag")
    doc = await flags.find_one({"_id": flag["_id"]})
    assert doc is not None
    assert doc["revisit"]["appointment_id"] == "appt-1"
    assert (doc["status"], doc["needs_attention"]) == ("open", False)
