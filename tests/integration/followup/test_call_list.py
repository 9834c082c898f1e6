"""Plans from templates, and the hotline's call list: due calls in risk order, claims that
hold a task for one agent, coded attempts, no-answer retries and the nurses' escalations,
do-not-contact, and the walls between organizations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.principal import Role
from tests.integration.followup.conftest import ORG, PREFIX, FollowupApi, adt

pytestmark = pytest.mark.integration

PCI_TEMPLATE = {
    "name": "After PCI",
    "org_id": ORG,
    "department_id": "h1.CARD",
    "icd_prefix": "I21",
    "steps": [
        {"kind": "call", "day": 3, "at": "09:30", "title": "Day-3 call", "priority": "high"},
        {"kind": "call", "day": 30, "title": "Day-30 call"},
    ],
}


async def discharged_patient(followup: FollowupApi, days_ago: float = 4) -> tuple[str, str]:
    """A patient discharged ``days_ago`` over MLLP; (patient id, plan id)."""
    patient_id, _account, national_id = await followup.register_patient()
    when = datetime.now(UTC) - timedelta(days=days_ago)
    await followup.mllp(adt(national_id=national_id, discharged_at=when))
    [plan] = await followup.plans_of(patient_id)
    return patient_id, plan["_id"]


async def first_task(followup: FollowupApi, plan_id: str) -> dict[str, Any]:
    tasks = await followup.tasks_of(plan_id)
    return await followup.wait_task(tasks[0]["_id"], "due")


async def test_the_template_that_fits_makes_the_plan_and_an_overdue_call_is_on_the_list(
    followup: FollowupApi,
) -> None:
    made = await followup.client.post(
        f"{PREFIX}/plan-templates", json=PCI_TEMPLATE, headers=followup.admin
    )
    assert made.status_code == 201, made.text
    _patient, plan_id = await discharged_patient(followup)
    plan = await followup.ctx.plans.get(plan_id)
    assert plan["template"] == {"id": made.json()["template_id"], "version": 1}
    task = await first_task(followup, plan_id)
    assert task["title"] == "Day-3 call"
    assert task["priority"] == "high"

    listed = await followup.client.get(f"{PREFIX}/call-list", headers=followup.agent())

    assert [t["task_id"] for t in listed.json()["items"]] == [task["_id"]]
    elsewhere = await followup.client.get(
        f"{PREFIX}/call-list", headers=followup.agent("agent-9", org="h2")
    )
    assert elsewhere.json()["items"] == []


async def test_a_template_revision_is_a_new_version_and_an_unknown_template_is_404(
    followup: FollowupApi,
) -> None:
    made = await followup.client.post(
        f"{PREFIX}/plan-templates", json=PCI_TEMPLATE, headers=followup.admin
    )
    url = f"{PREFIX}/plan-templates/{made.json()['template_id']}"
    revised = {**PCI_TEMPLATE, "steps": PCI_TEMPLATE["steps"][:1]}

    no_match = await followup.client.put(url, json=revised, headers=followup.admin)
    stale = await followup.client.put(
        url, json=revised, headers={**followup.admin, "if-match": '"7"'}
    )
    ok = await followup.client.put(url, json=revised, headers={**followup.admin, "if-match": '"1"'})
    unknown = await followup.client.put(
        f"{PREFIX}/plan-templates/nope", json=revised, headers={**followup.admin, "if-match": '"1"'}
    )
    bad_icd = await followup.client.post(
        f"{PREFIX}/plan-templates",
        json={**PCI_TEMPLATE, "icd_prefix": "PCI"},
        headers=followup.admin,
    )
    other_org = await followup.client.post(
        f"{PREFIX}/plan-templates", json={**PCI_TEMPLATE, "org_id": "h2"}, headers=followup.admin
    )

    assert no_match.status_code == 428
    assert stale.status_code == 409
    assert stale.json()["code"] == "version_conflict"
    assert ok.status_code == 200
    assert ok.json()["version"] == 2
    assert ok.headers["etag"] == '"2"'
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "plan_template_not_found"
    assert bad_icd.status_code == 422
    assert other_org.status_code == 403
    old = await followup.client.get(url, params={"version": 1}, headers=followup.agent())
    assert len(old.json()["steps"]) == 2


async def test_a_claim_holds_the_task_for_one_agent(followup: FollowupApi) -> None:
    _patient, plan_id = await discharged_patient(followup, days_ago=8)
    task = await first_task(followup, plan_id)
    url = f"{PREFIX}/tasks/{task['_id']}"

    mine = await followup.client.post(f"{url}/claim", headers=followup.agent("agent-1"))
    theirs = await followup.client.post(f"{url}/claim", headers=followup.agent("agent-2"))
    recorded_by_other = await followup.client.post(
        f"{url}/attempts", json={"outcome": "reached"}, headers=followup.agent("agent-2")
    )
    foreign = await followup.client.post(
        f"{url}/claim", headers=followup.agent("agent-9", org="h2")
    )

    assert mine.status_code == 200
    assert mine.json()["claim"]["agent_id"] == "agent-1"
    assert theirs.status_code == 409
    assert theirs.json()["code"] == "task_claimed_by_other"
    assert recorded_by_other.status_code == 409
    assert recorded_by_other.json()["code"] == "task_claimed_by_other"
    assert foreign.status_code == 403
    read = await followup.client.get(url, headers=followup.agent("agent-2"))
    assert read.status_code == 200
    audited = await followup.ctx.audit.query(action="followup.task.read")
    assert [(a.actor_id, a.patient_id) for a in audited] == [("agent-2", task["patient_id"])]
    done = await followup.client.post(
        f"{url}/attempts",
        json={"outcome": "reached", "notes": "恢复良好"},
        headers=followup.agent("agent-1"),
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "done"
    assert done.json()["attempts"][0]["notes"] == "恢复良好"
    plan = await followup.ctx.plans.get(plan_id)
    assert plan["status"] == "completed"
    [completed] = await followup.outbox("careloop.followup.task.completed")
    assert completed["outcome"] == "reached"
    assert completed["agent_id"] == "agent-1"


async def test_no_answer_is_tried_again_later_then_a_nurse_takes_over(
    followup: FollowupApi,
) -> None:
    _patient, plan_id = await discharged_patient(followup, days_ago=8)
    task = await first_task(followup, plan_id)
    url = f"{PREFIX}/tasks/{task['_id']}"

    for attempt in range(1, 4):
        await followup.wait_task(task["_id"], "due")
        claimed = await followup.client.post(f"{url}/claim", headers=followup.agent())
        assert claimed.status_code == 200, claimed.text
        answer = await followup.client.post(
            f"{url}/attempts", json={"outcome": "no_answer"}, headers=followup.agent()
        )
        assert answer.status_code == 200, answer.text
        expected = "unreachable" if attempt == 3 else "scheduled"
        assert answer.json()["status"] == expected
        assert answer.json()["no_answers"] == attempt

    as_patient = await followup.client.get(f"{PREFIX}/escalations", headers=followup.token("p"))
    assert as_patient.status_code == 403
    nurse = {**followup.token("nurse-1", Role.NURSE), "x-access-reason": "unreachable"}
    listed = await followup.client.get(f"{PREFIX}/escalations", headers=nurse)
    assert [t["task_id"] for t in listed.json()["items"]] == [task["_id"]]
    [unreachable] = await followup.outbox("careloop.followup.task.unreachable")
    assert unreachable["attempts"] == 3


async def test_outcomes_are_coded_and_checked(followup: FollowupApi) -> None:
    _patient, plan_id = await discharged_patient(followup, days_ago=8)
    task = await first_task(followup, plan_id)
    url = f"{PREFIX}/tasks/{task['_id']}"
    unclaimed = await followup.client.post(
        f"{url}/attempts", json={"outcome": "reached"}, headers=followup.agent()
    )
    await followup.client.post(f"{url}/claim", headers=followup.agent())
    unknown = await followup.client.post(
        f"{url}/attempts", json={"outcome": "maybe"}, headers=followup.agent()
    )
    no_date = await followup.client.post(
        f"{url}/attempts", json={"outcome": "call_back"}, headers=followup.agent()
    )
    later = datetime.now(UTC) + timedelta(days=2)
    call_back = await followup.client.post(
        f"{url}/attempts",
        json={"outcome": "call_back", "call_back_at": later.isoformat()},
        headers=followup.agent(),
    )

    assert unclaimed.status_code == 409
    assert unclaimed.json()["code"] == "task_not_claimed"
    assert unknown.status_code == 422
    assert no_date.status_code == 422
    assert no_date.json()["code"] == "call_back_at_required"
    assert call_back.status_code == 200
    assert call_back.json()["status"] == "scheduled"
    due = datetime.fromisoformat(call_back.json()["due_at"]).replace(tzinfo=UTC)
    assert abs((due - later).total_seconds()) < 1
    attempts = (await followup.task(task["_id"]))["attempts"]
    assert [a["outcome"] for a in attempts] == ["call_back"]


async def test_deceased_ends_the_plan_and_agreed_to_visit_asks_for_a_revisit(
    followup: FollowupApi,
) -> None:
    _p1, plan1 = await discharged_patient(followup, days_ago=8)
    _p2, plan2 = await discharged_patient(followup, days_ago=8)
    for plan_id, outcome in ((plan1, "deceased"), (plan2, "agreed_to_visit")):
        task = await first_task(followup, plan_id)
        url = f"{PREFIX}/tasks/{task['_id']}"
        await followup.client.post(f"{url}/claim", headers=followup.agent())
        done = await followup.client.post(
            f"{url}/attempts", json={"outcome": outcome}, headers=followup.agent()
        )
        assert done.status_code == 200, done.text

    ended = await followup.ctx.plans.get(plan1)
    assert ended["status"] == "ended"
    assert ended["end_reason"] == "deceased"
    [ask] = await followup.outbox("careloop.followup.revisit_requested")
    assert ask["plan_id"] == plan2
    assert ask["reason"] == "agreed_on_call"
    assert ask["department_id"] == "h1.CARD"


async def test_do_not_contact_skips_the_patients_calls(followup: FollowupApi) -> None:
    patient_id, plan_id = await discharged_patient(followup, days_ago=8)
    task = await first_task(followup, plan_id)
    url = f"{PREFIX}/patients/{patient_id}/do-not-contact"

    stranger = await followup.client.put(url, json={}, headers=followup.token("acct-x"))
    foreign = await followup.client.put(url, json={}, headers=followup.agent("a9", org="h2"))
    asked = await followup.client.put(url, json={"note": "患者要求"}, headers=followup.agent())

    assert stranger.status_code == 403
    assert foreign.status_code == 403
    assert asked.status_code == 200
    assert asked.json()["tasks_skipped"] >= 1
    skipped = await followup.task(task["_id"])
    assert skipped["status"] == "skipped"
    assert skipped["cancel_reason"] == "do_not_contact"
    listed = await followup.client.get(f"{PREFIX}/call-list", headers=followup.agent())
    assert listed.json()["items"] == []
