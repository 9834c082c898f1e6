"""Transport rules: the steps in order, who gives them, deadlines by priority, dispatch
scoring, the figures and the FHIR Task view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.referrals.domain.transport import (
    Porter,
    State,
    Step,
    best_porter,
    check_cancellable,
    check_porter,
    deadlines,
    next_state,
    rank_porters,
    required_skills,
)
from services.referrals.domain.transport_request import pickup_time
from services.referrals.transport_fhir import transport_task_of
from services.referrals.transport_figures import figures_of
from shared.domain_errors import Conflict, Forbidden

pytestmark = pytest.mark.unit
T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


def test_the_steps_walk_from_assigned_to_completed() -> None:
    state = State.ASSIGNED.value
    walked = []
    for step in (Step.ACCEPT, Step.PICKED_UP, Step.ARRIVED, Step.HANDED_OVER, Step.RETURNED):
        state = next_state(state, step).value
        walked.append(state)
    assert walked == ["en_route", "with_patient", "arrived", "handed_over", "returned"]
    assert next_state(state, Step.COMPLETED) is State.COMPLETED
    assert next_state("handed_over", Step.COMPLETED) is State.COMPLETED  # one way, no return


@pytest.mark.parametrize(
    ("state", "step"),
    [
        ("requested", Step.ACCEPT),  # nobody assigned yet
        ("assigned", Step.PICKED_UP),  # not accepted
        ("en_route", Step.ARRIVED),  # no patient yet
        ("with_patient", Step.COMPLETED),
        ("completed", Step.CANNOT_COMPLETE),
        ("cancelled", Step.ACCEPT),
    ],
)
def test_a_step_out_of_order_is_a_conflict(state: str, step: Step) -> None:
    with pytest.raises(Conflict) as refused:
        next_state(state, step)
    assert refused.value.code == "step_out_of_order"
    assert refused.value.extra["current_state"] == state


def test_cannot_complete_fails_any_working_state() -> None:
    for state in ("assigned", "en_route", "with_patient", "arrived", "handed_over", "returned"):
        assert next_state(state, Step.CANNOT_COMPLETE) is State.FAILED


def test_only_the_assigned_porter_or_the_dispatcher_gives_steps() -> None:
    check_porter("porter-1", "porter-1", dispatcher=False)
    check_porter("porter-1", "coordinator-1", dispatcher=True)
    check_porter(None, "coordinator-1", dispatcher=True)
    for assigned in ("porter-1", None):
        with pytest.raises(Forbidden) as refused:
            check_porter(assigned, "porter-2", dispatcher=False)
        assert refused.value.code == "not_assigned_porter"


def test_cancelled_only_until_the_patient_is_taken() -> None:
    for state in ("requested", "assigned", "en_route"):
        check_cancellable(state)
    for state in ("with_patient", "arrived", "completed", "failed"):
        with pytest.raises(Conflict):
            check_cancellable(state)


def test_skills_follow_mode_and_needs() -> None:
    assert required_skills("wheelchair", []) == frozenset()
    assert required_skills("bed", ["oxygen"]) == {"stretcher", "oxygen"}
    assert required_skills("ambulance", ["monitor", "nurse_escort"]) == {"ambulance", "monitor"}


def test_deadlines_for_now_and_for_a_set_time() -> None:
    now = deadlines(T0, None, 5, 15)
    assert (now.response_due, now.pickup_due) == (
        T0 + timedelta(minutes=5),
        T0 + timedelta(minutes=15),
    )
    later = deadlines(T0, T0 + timedelta(hours=2), 10, 30)
    assert later.pickup_due == T0 + timedelta(hours=2)
    assert later.response_due == T0 + timedelta(hours=2) - timedelta(minutes=20)
    soon = deadlines(T0, T0 + timedelta(minutes=5), 10, 30)  # sooner than possible: from now
    assert soon.pickup_due == T0 + timedelta(minutes=30)


def test_pickup_is_the_lead_time_before_the_exam() -> None:
    exam = T0 + timedelta(hours=3)
    assert pickup_time(None, exam, 30) == exam - timedelta(minutes=30)
    assert pickup_time(T0, exam, 30) == T0
    assert pickup_time(None, None, 30) is None


def porter(pid: str, zones: set[str], skills: set[str] = frozenset(), **kw: Any) -> Porter:  # type: ignore[assignment]
    return Porter(
        pid, frozenset(zones), frozenset(skills), kw.get("on_duty", True), kw.get("load", 0)
    )


def test_dispatch_prefers_zone_then_load_and_needs_the_skills() -> None:
    roster = [
        porter("far", {"B"}),
        porter("near-busy", {"A"}, load=1),
        porter("near", {"A"}),
        porter("off", {"A"}, on_duty=False),
        porter("full", {"A"}, load=2),
    ]
    assert best_porter(roster, "A", frozenset(), 2).porter_id == "near"  # type: ignore[union-attr]
    ranked = {r.porter.porter_id: r.excluded for r in rank_porters(roster, "A", frozenset(), 2)}
    assert ranked == {
        "near": None,
        "near-busy": None,
        "far": None,
        "off": "off_duty",
        "full": "at_capacity",
    }
    stretcher = [porter("near", {"A"}), porter("far-stretcher", {"B"}, {"stretcher"})]
    chosen = best_porter(stretcher, "A", frozenset({"stretcher"}), 2)
    assert chosen is not None
    assert chosen.porter_id == "far-stretcher"
    assert best_porter([porter("near", {"A"})], "A", frozenset({"ambulance"}), 2) is None


def transport(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": "t-1",
        "patient_id": "p-1",
        "org_id": "h1",
        "state": "completed",
        "priority": "urgent",
        "mode": "wheelchair",
        "from": {"org_id": "h1", "ward": "5W", "bed": "12"},
        "to": {"org_id": "h1", "room": "CT-2"},
        "porter_id": "porter-1",
        "requested_at": T0,
        "pickup_at": None,
        "pickup_due_at": T0 + timedelta(minutes=30),
        "times": {
            "requested": T0,
            "en_route": T0 + timedelta(minutes=4),
            "with_patient": T0 + timedelta(minutes=12),
            "arrived": T0 + timedelta(minutes=20),
            "completed": T0 + timedelta(minutes=40),
        },
        "escalated": {},
        "version": 6,
        "updated_at": T0 + timedelta(minutes=40),
    }
    doc.update(changes)
    return doc


def test_figures_by_priority_per_porter_and_late_exams() -> None:
    docs = [
        transport(),
        transport(_id="t-2", appointment_starts_at=T0 + timedelta(minutes=15)),  # late
        transport(_id="t-3", priority="emergency", state="failed", escalated={"pickup": True}),
    ]
    found = figures_of(docs)
    assert found["by_priority"]["urgent"]["count"] == 2
    assert found["by_priority"]["urgent"]["median_response_seconds"] == 240
    assert found["by_priority"]["urgent"]["median_pickup_seconds"] == 720
    assert found["by_priority"]["emergency"]["missed_pickup"] == 1
    assert found["per_porter"] == [
        {"porter_id": "porter-1", "jobs": 3, "completed": 2, "failed": 1}
    ]
    assert found["late_exam_arrivals"] == {"count": 1, "transport_ids": ["t-2"]}


def test_the_fhir_task_carries_the_state_as_business_status() -> None:
    task = transport_task_of(transport(state="with_patient", referral_id="r-1"))
    assert task["resourceType"] == "Task"
    assert task["status"] == "in-progress"
    assert task["businessStatus"]["coding"][0]["code"] == "with_patient"
    assert task["for"]["reference"] == "Patient/p-1"
    assert task["basedOn"][0]["reference"] == "ServiceRequest/r-1"
    assert task["owner"]["identifier"]["value"] == "porter-1"
    waiting = transport_task_of(transport(state="requested", porter_id=None, times={}))
    assert waiting["status"] == "requested"
    assert "owner" not in waiting
    assert waiting["restriction"]["period"]["end"].startswith("2026-12-01T01:30")
    failed = transport_task_of(transport(state="failed", reason="patient refused"))
    assert (failed["status"], failed["statusReason"]["text"]) == ("failed", "patient refused")
