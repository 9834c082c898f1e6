"""Complaints under first-receiver responsibility (首诉负责制) over HTTP: raising one (a
patient account for the desk, an agent on the hotline for themself), the owner's commands
with If-Match, handover, closing after the callback, escalation past the deadline by the
timed job, the walls between organizations and accounts, and the organization's settings."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from services.followup.complaint_records import ESCALATE_JOB, escalate_job_key
from services.followup.domain.working_days import add_working_days, is_working_day
from shared.ids import new_id
from shared.jobs import JOBS, Job
from shared.principal import Role
from tests.integration.followup.conftest import ORG, PREFIX, FollowupApi
from tests.support.kafka import wait_until

pytestmark = pytest.mark.integration

TZ = "Asia/Shanghai"
COMPLAINTS = f"{PREFIX}/complaints"
OPENED = "careloop.followup.complaint.opened"
ESCALATED = "careloop.followup.complaint.escalated"
RESOLVED = "careloop.followup.complaint.resolved"
BODY: dict[str, Any] = {
    "category": "service_attitude",
    "severity": "medium",
    "description": "The registration desk was rude to my mother.",
    "departments_involved": ["REG"],
    "people_involved": [{"role": "clerk", "name": "Window 3"}],
}


def at(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


def if_match(version: int) -> dict[str, str]:
    return {"if-match": f'"{version}"'}


def nurse(followup: FollowupApi, name: str = "nurse-1", org: str = ORG) -> dict[str, str]:
    return {**followup.token(name, Role.NURSE, org=org), "x-access-reason": "complaint desk"}


async def raise_by_agent(followup: FollowupApi, agent: str = "agent-1") -> dict[str, Any]:
    r = await followup.client.post(COMPLAINTS, json=BODY, headers=followup.agent(agent))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def command(
    followup: FollowupApi,
    complaint_id: str,
    name: str,
    headers: dict[str, str],
    version: int | None,
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    extra = if_match(version) if version is not None else {}
    return await followup.client.post(
        f"{COMPLAINTS}/{complaint_id}/{name}", json=body, headers={**headers, **extra}
    )


async def read(followup: FollowupApi, complaint_id: str) -> dict[str, Any]:
    r = await followup.client.get(f"{COMPLAINTS}/{complaint_id}", headers=followup.admin)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_a_patient_raises_one_for_the_desk_due_in_five_working_days(
    followup: FollowupApi,
) -> None:
    patient_id, account_id, _ = await followup.register_patient()
    patient = followup.token(account_id, Role.PATIENT)
    r = await followup.client.post(
        COMPLAINTS, json={**BODY, "org_id": ORG, "patient_id": patient_id}, headers=patient
    )
    assert r.status_code == 201, r.text
    mine = r.json()
    assert r.headers["etag"] == '"1"'
    assert mine["channel"] == "patient_api"
    assert mine["status"] == "received"
    assert "owner_id" not in mine
    assert "history" not in mine

    staff = await read(followup, mine["complaint_id"])
    assert staff["owner_id"] == staff["receiver_id"] == f"desk:{ORG}"
    assert staff["complainant_account_id"] == account_id
    received = at(staff["received_at"])
    expected = add_working_days(received, 5, TZ, time(17, 30))
    assert at(staff["deadline_at"]) == expected
    assert at(staff["deadline_at"]).astimezone(ZoneInfo(TZ)).time() == time(17, 30)
    assert [h["type"] for h in staff["history"]] == ["received"]

    [opened] = await followup.outbox(OPENED)
    assert opened["complaint_id"] == mine["complaint_id"]
    assert opened["owner_id"] == f"desk:{ORG}"
    assert opened["channel"] == "patient_api"
    job = await followup.ctx.db[JOBS].find_one({"key": escalate_job_key(mine["complaint_id"])})
    assert job is not None
    assert job["kind"] == ESCALATE_JOB
    assert job["status"] == "scheduled"
    assert job["due_at"].replace(tzinfo=UTC) == expected

    listed = await followup.client.get(f"{PREFIX}/me/complaints", headers=patient)
    assert [c["complaint_id"] for c in listed.json()["items"]] == [mine["complaint_id"]]
    own = await followup.client.get(f"{COMPLAINTS}/{mine['complaint_id']}", headers=patient)
    assert own.status_code == 200
    assert "history" not in own.json()

    stranger = await followup.client.post(
        COMPLAINTS,
        json={**BODY, "org_id": ORG, "patient_id": new_id()},
        headers=patient,
    )
    assert stranger.status_code == 403
    assert stranger.json()["code"] == "forbidden_patient"


async def test_an_agent_takes_one_on_the_hotline_and_owns_it(followup: FollowupApi) -> None:
    created = await raise_by_agent(followup)
    assert created["channel"] == "hotline"
    assert created["owner_id"] == created["receiver_id"] == "agent-1"
    assert created["org_id"] == ORG
    assert created["complexity"] == "investigation"

    listed = await followup.client.get(COMPLAINTS, params={"owner": "me"}, headers=followup.agent())
    assert [c["complaint_id"] for c in listed.json()["items"]] == [created["complaint_id"]]
    other = await followup.client.get(
        COMPLAINTS, params={"owner": "me"}, headers=followup.agent("agent-2")
    )
    assert other.json()["items"] == []

    backdated = await followup.client.post(
        COMPLAINTS, json={**BODY, "received_at": "2026-01-05T01:00:00Z"}, headers=followup.agent()
    )
    assert backdated.status_code == 422
    assert backdated.json()["code"] == "received_at_not_allowed"


async def test_after_a_handover_the_new_owner_acts_and_the_old_one_may_not(
    followup: FollowupApi,
) -> None:
    created = await raise_by_agent(followup)
    cid = created["complaint_id"]
    started = await command(followup, cid, "start-investigation", followup.agent(), 1)
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "in_progress"
    assert started.headers["etag"] == '"2"'

    moved = await command(
        followup,
        cid,
        "handover",
        followup.agent(),
        2,
        {"to_owner_id": "nurse-1", "reason": "the ward's head nurse follows up"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["owner_id"] == "nurse-1"
    assert moved.json()["receiver_id"] == "agent-1"

    refused = await command(
        followup, cid, "resolve", followup.agent(), 3, {"resolution": "apologised"}
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "not_complaint_owner"
    resolved = await command(
        followup, cid, "resolve", nurse(followup), 3, {"resolution": "apologised"}
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"

    history = (await read(followup, cid))["history"]
    assert [h["type"] for h in history] == [
        "received",
        "investigation_started",
        "handed_over",
        "resolved",
    ]
    assert history[2]["actor_id"] == "agent-1"
    assert history[2]["data"]["to_owner_id"] == "nurse-1"
    [event] = await followup.outbox(RESOLVED)
    assert event["status"] == "resolved"
    assert event["owner_id"] == "nurse-1"


async def test_a_command_from_the_wrong_status_is_409_and_changes_nothing(
    followup: FollowupApi,
) -> None:
    created = await raise_by_agent(followup)
    cid = created["complaint_id"]
    r = await command(followup, cid, "reopen", followup.agent(), 1, {"reason": "not happy"})
    assert r.status_code == 409
    assert r.json()["code"] == "invalid_transition"
    assert r.json()["current_status"] == "received"
    after = await read(followup, cid)
    assert after["version"] == 1
    assert after["status"] == "received"
    assert len(after["history"]) == 1


async def test_commands_need_the_current_version(followup: FollowupApi) -> None:
    created = await raise_by_agent(followup)
    cid = created["complaint_id"]
    missing = await command(followup, cid, "start-investigation", followup.agent(), None)
    assert missing.status_code == 428
    assert missing.json()["code"] == "if_match_required"
    stale = await command(followup, cid, "start-investigation", followup.agent(), 7)
    assert stale.status_code == 412
    assert stale.json()["code"] == "version_conflict"
    assert (await read(followup, cid))["version"] == 1


async def test_closing_needs_the_callback_and_the_satisfaction(followup: FollowupApi) -> None:
    created = await raise_by_agent(followup)
    cid = created["complaint_id"]
    agent = followup.agent()
    r = await command(followup, cid, "resolve", agent, 1, {"resolution": "refund issued"})
    assert r.status_code == 200, r.text

    early = await command(followup, cid, "close", agent, 2, {"satisfaction": 5})
    assert early.status_code == 409
    assert early.json()["code"] == "callback_required"
    unsure = await command(followup, cid, "close", agent, 2, {"callback_reached": True})
    assert unsure.status_code == 422
    assert unsure.json()["code"] == "satisfaction_required"

    called = await command(followup, cid, "callback", agent, 2, {"reached": True, "note": "ok"})
    assert called.status_code == 200, called.text
    closed = await command(followup, cid, "close", agent, 3, {"satisfaction": 4})
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"
    assert closed.json()["satisfaction"] == 4

    events = await followup.outbox(RESOLVED)
    assert [e["status"] for e in events] == ["resolved", "closed"]
    assert events[1]["handling_satisfaction"] == 4
    job = await followup.ctx.db[JOBS].find_one({"key": escalate_job_key(cid)})
    assert job is not None
    assert job["status"] == "cancelled"


def previous_working_day_morning() -> datetime:
    """09:00 local on the last working day before today: an on-the-spot deadline past."""
    zone = ZoneInfo(TZ)
    day = datetime.now(zone).date() - timedelta(days=1)
    while not is_working_day(day):
        day -= timedelta(days=1)
    return datetime.combine(day, time(9, 0), tzinfo=zone)


async def test_a_complaint_past_its_deadline_escalates(followup: FollowupApi) -> None:
    received = previous_working_day_morning()
    body = {
        **BODY,
        "org_id": ORG,
        "channel": "letter",
        "complexity": "on_the_spot",
        "received_at": received.isoformat(),
    }
    r = await followup.client.post(COMPLAINTS, json=body, headers=followup.service)
    assert r.status_code == 201, r.text
    cid = r.json()["complaint_id"]
    assert at(r.json()["deadline_at"]) == add_working_days(received, 0, TZ)
    assert r.json()["owner_id"] == f"desk:{ORG}"

    async def escalated() -> bool:
        return bool(await followup.outbox(ESCALATED))

    await wait_until(escalated, timeout=30, what="the escalation")
    [event] = await followup.outbox(ESCALATED)
    assert event["complaint_id"] == cid
    assert event["escalation_level"] == 1
    assert event["missed"] == "feedback_deadline"
    assert event["from_level"] == 0
    after = await read(followup, cid)
    assert after["escalation_level"] == 1
    assert after["overdue"] is True
    assert [h["type"] for h in after["history"]] == ["received", "escalated"]
    job = await followup.ctx.db[JOBS].find_one({"key": escalate_job_key(cid)})
    assert job is not None
    assert job["status"] == "scheduled"
    assert job["due_at"].replace(tzinfo=UTC) > datetime.now(UTC)  # level 2, later

    # a re-run (say, after a crash) changes nothing twice
    rerun = Job(new_id(), ESCALATE_JOB, datetime.now(UTC), {"complaint_id": cid}, 2, None)
    await followup.ctx.outbox.transaction(
        lambda tx: followup.ctx.complaints.escalate_due(rerun, tx)
    )
    assert len(await followup.outbox(ESCALATED)) == 1
    assert (await read(followup, cid))["version"] == after["version"]

    overdue = await followup.client.get(
        COMPLAINTS, params={"overdue": "true"}, headers=followup.admin
    )
    assert [c["complaint_id"] for c in overdue.json()["items"]] == [cid]


async def test_the_walls_between_organizations_and_accounts(followup: FollowupApi) -> None:
    _patient_id, account_id, _ = await followup.register_patient()
    patient = followup.token(account_id, Role.PATIENT)
    r = await followup.client.post(COMPLAINTS, json={**BODY, "org_id": ORG}, headers=patient)
    assert r.status_code == 201, r.text
    cid = r.json()["complaint_id"]
    url = f"{COMPLAINTS}/{cid}"

    foreign = followup.agent("agent-9", org="h2")
    assert (await followup.client.get(url, headers=foreign)).status_code == 403
    assert (await followup.client.get(COMPLAINTS, headers=foreign)).json()["items"] == []
    named = await followup.client.get(COMPLAINTS, params={"org_id": ORG}, headers=foreign)
    assert named.status_code == 403
    moved = await command(
        followup, cid, "handover", foreign, 1, {"to_owner_id": "agent-9", "reason": "mine"}
    )
    assert moved.status_code == 403
    assert moved.json()["code"] == "forbidden_org"

    _other_patient, other_account, _ = await followup.register_patient()
    other = followup.token(other_account, Role.PATIENT)
    assert (await followup.client.get(url, headers=other)).status_code == 403
    assert (await followup.client.get(f"{PREFIX}/me/complaints", headers=other)).json() == {
        "items": []
    }
    assert (await followup.client.get(url)).status_code == 401
    every = await followup.client.get(COMPLAINTS, headers=followup.service)
    assert every.status_code == 422
    assert every.json()["code"] == "org_id_required"

    # the desk's complaint: an admin of the organization hands it to a nurse
    admin_moved = await command(
        followup,
        cid,
        "handover",
        followup.admin,
        1,
        {"to_owner_id": "nurse-1", "reason": "outpatient nurse lead"},
    )
    assert admin_moved.status_code == 200, admin_moved.text
    withdrawn = await command(followup, cid, "withdraw", patient, 2, {"reason": "sorted out"})
    assert withdrawn.status_code == 403  # no patient named: the desk withdraws it on request

    await read(followup, cid)
    audit = await followup.ctx.db["audit_log"].find({"resource": f"complaint:{cid}"}).to_list(None)
    assert {"followup.complaint.read", "followup.complaint.handed_over"} <= {
        a["action"] for a in audit
    }


async def test_the_organizations_settings(followup: FollowupApi) -> None:
    url = f"{PREFIX}/admin/complaint-settings/{ORG}"
    got = await followup.client.get(url, headers=followup.admin)
    assert got.status_code == 200, got.text
    assert got.json()["feedback_working_days"] == 5
    assert got.json()["version"] == 0
    assert got.json()["desk_owner_id"] == f"desk:{ORG}"
    assert got.json()["closing_time"] == "17:30:00"

    invalid = {"feedback_working_days": 12, "multi_department_working_days": 10}
    bad = await followup.client.put(url, json=invalid, headers=followup.admin)
    assert bad.status_code == 422
    assert (await followup.client.get(url, headers=followup.admin)).json()["version"] == 0

    other_admin = followup.token("admin-h2", Role.ADMIN, org="h2")
    assert (await followup.client.put(url, json={}, headers=other_admin)).status_code == 403
    assert (await followup.client.get(url, headers=followup.agent())).status_code == 403

    good = {"feedback_working_days": 3, "closing_time": "17:00", "desk_owner_id": "nurse-lead"}
    put = await followup.client.put(url, json=good, headers={**followup.admin, **if_match(0)})
    assert put.status_code == 200, put.text
    assert put.json()["version"] == 1
    assert put.headers["etag"] == '"1"'
    stale = await followup.client.put(url, json=good, headers={**followup.admin, **if_match(0)})
    assert stale.status_code == 412

    _patient_id, account_id, _ = await followup.register_patient()
    patient = followup.token(account_id, Role.PATIENT)
    r = await followup.client.post(COMPLAINTS, json={**BODY, "org_id": ORG}, headers=patient)
    staff = await read(followup, r.json()["complaint_id"])
    assert staff["owner_id"] == "nurse-lead"
    received = at(staff["received_at"])
    assert at(staff["deadline_at"]) == add_working_days(received, 3, TZ, time(17, 0))


async def test_reclassifying_moves_the_deadline_and_the_escalation(followup: FollowupApi) -> None:
    created = await raise_by_agent(followup)
    cid = created["complaint_id"]
    body = {
        "complexity": "investigation",
        "departments_involved": ["REG", "CARD"],
        "severity": "high",
    }
    r = await command(followup, cid, "reclassify", followup.agent(), 1, body)
    assert r.status_code == 200, r.text
    after = r.json()
    assert after["complexity"] == "multi_department"
    assert after["severity"] == "high"
    expected = add_working_days(at(after["received_at"]), 10, TZ)
    assert at(after["deadline_at"]) == expected
    job = await followup.ctx.db[JOBS].find_one({"key": escalate_job_key(cid)})
    assert job is not None
    assert job["due_at"].replace(tzinfo=UTC) == expected
