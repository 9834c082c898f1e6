"""The follow-up dashboard over a small known set of plans, tasks, risk flags, a survey
and complaints, with exact figures; and the walls between organizations."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.auth import TokenMinter
from shared.ids import new_id
from shared.principal import Role
from shared.settings import ServiceSettings
from tests.integration.followup.conftest import ORG, PREFIX, FollowupApi
from tests.integration.followup.survey_support import (
    GOOD_ANSWERS,
    check_in,
    followup_app,
    wait_survey,
)

pytestmark = pytest.mark.integration
URL = f"{PREFIX}/figures"


@pytest.fixture
async def followup(
    make_settings: Callable[..., ServiceSettings], minter: TokenMinter
) -> AsyncIterator[FollowupApi]:
    async with followup_app(make_settings, minter) as api:
        yield api


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


def attempts(*outcomes: str) -> list[dict[str, Any]]:
    return [{"at": ago(days=1), "outcome": o, "agent_id": "agent-1"} for o in outcomes]


async def seed(followup: FollowupApi) -> None:
    """Plans, tasks, flags and complaints of h1 (and a few of h2 or too old to count)."""
    db = followup.ctx.db

    def plan(org: str, status: str, created: float) -> dict[str, Any]:
        source = {"source": "discharge", "source_id": new_id()}
        return {
            "_id": new_id(),
            **source,
            "org_id": org,
            "status": status,
            "created_at": ago(days=created),
        }

    await db["plans"].insert_many(
        [
            plan(ORG, "active", 3),
            plan(ORG, "completed", 9),
            plan(ORG, "ended", 40),  # before the period
            plan("h2", "active", 1),
        ]
    )

    def task(status: str, due_at: datetime, org: str = ORG, *tried: str) -> dict[str, Any]:
        return {
            "_id": new_id(),
            "plan_id": new_id(),
            "step": 0,
            "org_id": org,
            "patient_id": new_id(),
            "kind": "call",
            "status": status,
            "due_at": due_at,
            "attempts": attempts(*tried),
        }

    await db["followup_tasks"].insert_many(
        [
            task("done", ago(days=5), ORG, "no_answer", "reached"),
            task("unreachable", ago(days=6), ORG, "no_answer", "no_answer", "no_answer"),
            task("due", ago(days=1)),  # overdue
            task("scheduled", ago(hours=2)),  # overdue: its job has not fired yet
            task("cancelled", ago(days=2)),  # not work: not counted
            task("scheduled", ago(days=-5)),  # due later: outside the period
            task("done", ago(days=2), "h2", "reached"),
        ]
    )

    def flag(level: str, status: str, seconds: float | None, org: str = ORG) -> dict[str, Any]:
        return {
            "_id": new_id(),
            "response_id": new_id(),
            "rule_id": new_id(),
            "org_id": org,
            "level": level,
            "urgent": level == "urgent",
            "raised_at": ago(days=2),
            "status": status,
            "response_seconds": seconds,
        }

    await db["risk_flags"].insert_many(
        [
            flag("urgent", "acknowledged", 120),
            flag("high", "acknowledged", 600),
            flag("high", "open", None),
            flag("moderate", "acknowledged", 60),
            flag("urgent", "open", None, "h2"),
        ]
    )

    def complaint(
        category: str, status: str, received: float, deadline: float, **more: Any
    ) -> dict[str, Any]:
        return {
            "_id": new_id(),
            "org_id": ORG,
            "category": category,
            "status": status,
            "received_at": ago(days=received),
            "deadline_at": ago(days=deadline),
            "escalation_level": 0,
            **more,
        }

    await db["complaints"].insert_many(
        [
            complaint("medical_quality", "resolved", 3, 1, resolved_at=ago(days=2)),
            complaint("service_attitude", "in_progress", 10, 3, escalation_level=1),
            complaint(
                "service_attitude",
                "closed",
                12,
                5,
                escalation_level=1,
                history=[{"type": "resolved", "actor_id": "u1", "at": ago(days=4)}],
            ),
            complaint("other", "withdrawn", 2, -1),
        ]
    )


async def answered_survey(followup: FollowupApi) -> None:
    patient_id, account_id, _ = await followup.register_patient()
    appointment_id = await check_in(followup, patient_id, account_id, department="h1.CARD")
    survey = await wait_survey(followup, f"appointment:{appointment_id}")
    answered = await followup.client.post(
        f"{PREFIX}/surveys/{survey['_id']}/answers",
        json={"answers": GOOD_ANSWERS},
        headers=followup.token(account_id),
    )
    assert answered.status_code == 200, answered.text


async def test_the_dashboard_of_the_last_30_days(followup: FollowupApi) -> None:
    await seed(followup)
    await answered_survey(followup)

    got = await followup.client.get(URL, headers=followup.admin)

    assert got.status_code == 200, got.text
    body = got.json()
    assert body["org_id"] == ORG
    until = datetime.fromisoformat(body["until"])
    assert until - datetime.fromisoformat(body["since"]) == timedelta(days=30)
    assert body["follow_up"] == {
        "plans_started": 2,
        "tasks_due": 4,
        "completed": 1,
        "completion_rate": 0.25,
        "call_attempts": 5,
        "reached_attempts": 1,
        "reach_rate": 0.2,
        "unreachable": 1,
        "overdue_now": 2,
    }
    assert body["risk_flags"] == {
        "count": 4,
        "by_level": {"high": 2, "moderate": 1, "urgent": 1},
        "acknowledged": 3,
        "median_response_seconds": 120.0,
        "p90_response_seconds": 600.0,
    }
    assert body["satisfaction"] == [
        {
            "group": "h1.CARD",
            "sent": 1,
            "completed": 1,
            "response_rate": 1.0,
            "mean_score": 4.0,
            "percent": 75.0,
        }
    ]
    assert body["complaints"] == {
        "count": 4,
        "by_category": {"medical_quality": 1, "other": 1, "service_attitude": 2},
        "by_status": {"closed": 1, "in_progress": 1, "resolved": 1, "withdrawn": 1},
        "escalated": 2,
        "due_in_period": 3,
        "resolved_on_time": 1,
        "deadline_compliance": 0.3333,
    }


async def test_a_period_is_chosen_and_alliance_callers_name_the_organization(
    followup: FollowupApi,
) -> None:
    await seed(followup)
    recent = {"since": ago(days=5.5).isoformat(), "until": datetime.now(UTC).isoformat()}
    alliance = followup.token("boss", Role.ALLIANCE_ADMIN, org=None)

    named = await followup.client.get(URL, params={**recent, "org_id": ORG}, headers=alliance)
    unnamed = await followup.client.get(URL, headers=alliance)
    service = await followup.client.get(URL, params={"org_id": "h2"}, headers=followup.service)
    backwards = await followup.client.get(
        URL, params={"since": recent["until"], "until": recent["since"]}, headers=followup.admin
    )

    assert named.status_code == 200, named.text
    assert named.json()["follow_up"]["plans_started"] == 1
    assert named.json()["follow_up"]["tasks_due"] == 3  # not the unreachable one, due 6 days ago
    assert named.json()["complaints"]["count"] == 2
    assert unnamed.status_code == 422
    assert unnamed.json()["code"] == "org_id_required"
    assert service.json()["follow_up"]["plans_started"] == 1
    assert service.json()["risk_flags"]["by_level"] == {"urgent": 1}
    assert backwards.status_code == 422


async def test_the_walls_of_the_dashboard(followup: FollowupApi) -> None:
    await seed(followup)
    h2_admin = followup.token("admin-h2", Role.ADMIN, org="h2")

    other_org = await followup.client.get(URL, params={"org_id": ORG}, headers=h2_admin)
    own_org = await followup.client.get(URL, headers=h2_admin)
    agent = await followup.client.get(URL, headers=followup.agent())
    patient = await followup.client.get(URL, headers=followup.token("acct-1"))
    anonymous = await followup.client.get(URL)

    assert other_org.status_code == 403
    assert other_org.json()["code"] == "forbidden_org"
    assert own_org.status_code == 200
    assert own_org.json()["org_id"] == "h2"
    assert own_org.json()["follow_up"]["completed"] == 1
    assert agent.status_code == 403
    assert patient.status_code == 403
    assert anonymous.status_code == 401
