"""Complaints: deadlines (2019 rules), escalation, ownership and the state machine."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.followup.domain.complaint import (
    CATEGORY_LABELS,
    SEVERITY_LABELS,
    Actor,
    Applied,
    Callback,
    Category,
    Channel,
    Close,
    Command,
    ComplaintDeadlines,
    ComplaintState,
    Complexity,
    EscalationLevel,
    Handover,
    Reclassify,
    RecordCallback,
    Reopen,
    Resolve,
    Severity,
    StartInvestigation,
    Status,
    Withdraw,
    apply,
    deadline_for,
    effective_complexity,
    ensure_transition,
    escalate,
    escalation_due_at,
    escalation_level_after,
    next_escalation_at,
    receive,
)
from shared.domain_errors import Conflict, DomainError, Forbidden, Invalid

pytestmark = pytest.mark.unit

TZ = "Asia/Shanghai"
CST = ZoneInfo(TZ)
SETTINGS = ComplaintDeadlines()
AGENT = Actor("agent-1", org_id="org-1")
OTHER = Actor("agent-2", org_id="org-1")
ADMIN = Actor("admin-1", org_id="org-1", is_admin=True)
FOREIGN_ADMIN = Actor("admin-9", org_id="org-9", is_admin=True)
ALLIANCE = Actor("root", is_alliance_admin=True)
PATIENT = Actor("acct-1", patient_ids=frozenset({"pat-1"}))


def local(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=CST)


def closing(y: int, m: int, d: int) -> datetime:
    return datetime.combine(date(y, m, d), time(17, 30), tzinfo=CST).astimezone(UTC)


def new(
    complexity: Complexity = Complexity.INVESTIGATION,
    departments: tuple[str, ...] = ("cardiology",),
    received_at: datetime | None = None,
) -> ComplaintState:
    return receive(
        org_id="org-1",
        receiver_id=AGENT.user_id,
        received_at=received_at or local(2026, 3, 9),
        complexity=complexity,
        departments_involved=departments,
        settings=SETTINGS,
        tz=TZ,
        complainant_patient_id="pat-1",
    )


def act(state: ComplaintState, command: Command, actor: Actor = AGENT) -> Applied:
    return apply(state, actor, command, at=local(2026, 3, 10), settings=SETTINGS, tz=TZ)


def resolved() -> ComplaintState:
    return act(new(), Resolve("apologized; the queue system was fixed")).state


def fails(
    kind: type[DomainError],
    code: str,
    state: ComplaintState,
    command: Command,
    actor: Actor = AGENT,
) -> None:
    with pytest.raises(kind) as caught:
        act(state, command, actor)
    assert caught.value.code == code
    assert caught.value.detail
    assert caught.value.detail_zh


# --- vocabulary --------------------------------------------------------------------------------


def test_every_category_and_severity_has_zh_and_en_labels() -> None:
    assert set(CATEGORY_LABELS) == set(Category)
    assert set(SEVERITY_LABELS) == set(Severity)
    for label in [*CATEGORY_LABELS.values(), *SEVERITY_LABELS.values()]:
        assert label.zh
        assert label.en
    assert CATEGORY_LABELS[Category.FEES_BILLING].zh == "收费"


def test_codes_are_snake_case() -> None:
    for enum in (Category, Severity, Channel, Complexity, Status):
        for member in enum:
            assert re.fullmatch(r"[a-z]+(_[a-z]+)*", member.value), member
    assert {Channel.PATIENT_API, Channel.HOTLINE} <= set(Channel)


# --- settings and deadlines --------------------------------------------------------------------


def test_the_defaults_are_the_2019_rules() -> None:
    assert SETTINGS.on_the_spot_working_days == 0
    assert SETTINGS.feedback_working_days == 5
    assert SETTINGS.multi_department_working_days == 10
    assert SETTINGS.closing_time == time(17, 30)
    assert SETTINGS.escalate_department_after_working_days == 0
    assert SETTINGS.escalate_management_after_working_days == 2
    assert SETTINGS.callback_attempts_when_unreachable == 3


def test_settings_parse_a_closing_time_and_refuse_disorder() -> None:
    assert ComplaintDeadlines.model_validate({"closing_time": "18:00"}).closing_time == time(18)
    with pytest.raises(ValidationError, match="multi-department"):
        ComplaintDeadlines(feedback_working_days=12)
    with pytest.raises(ValidationError, match="management"):
        ComplaintDeadlines(escalate_department_after_working_days=2)
    with pytest.raises(ValidationError):
        ComplaintDeadlines.model_validate({"surprise": 1})


def test_several_distinct_departments_mean_multi_department() -> None:
    assert effective_complexity(Complexity.ON_THE_SPOT, ["a", "b"]) is Complexity.MULTI_DEPARTMENT
    assert effective_complexity(Complexity.INVESTIGATION, ["a", "a"]) is Complexity.INVESTIGATION
    assert effective_complexity(Complexity.MULTI_DEPARTMENT, []) is Complexity.MULTI_DEPARTMENT


@pytest.mark.parametrize(
    ("complexity", "departments", "due"),
    [
        (Complexity.ON_THE_SPOT, ("er",), closing(2026, 3, 9)),
        (Complexity.INVESTIGATION, ("er",), closing(2026, 3, 16)),
        (Complexity.MULTI_DEPARTMENT, ("er",), closing(2026, 3, 23)),
        (Complexity.INVESTIGATION, ("er", "lab"), closing(2026, 3, 23)),
    ],
)
def test_deadline_for_an_ordinary_week(
    complexity: Complexity, departments: tuple[str, ...], due: datetime
) -> None:
    assert deadline_for(local(2026, 3, 9), complexity, departments, SETTINGS, TZ) == due


def test_deadline_for_across_national_day_2026() -> None:
    received = local(2026, 9, 30)
    assert deadline_for(received, Complexity.INVESTIGATION, [], SETTINGS, TZ) == closing(
        2026, 10, 13
    )
    assert deadline_for(received, Complexity.ON_THE_SPOT, [], SETTINGS, TZ) == closing(2026, 9, 30)
    late = local(2026, 9, 30, 19)  # after closing: on the spot means the next working day
    assert deadline_for(late, Complexity.ON_THE_SPOT, [], SETTINGS, TZ) == closing(2026, 10, 8)


def test_deadline_for_uses_the_organizations_settings() -> None:
    settings = ComplaintDeadlines(on_the_spot_working_days=1, closing_time=time(17))
    due = deadline_for(local(2026, 3, 9), Complexity.ON_THE_SPOT, [], settings, TZ)
    assert due == datetime(2026, 3, 10, 17, tzinfo=CST)


# --- escalation --------------------------------------------------------------------------------


def test_escalation_levels_fall_due_at_the_deadline_and_two_working_days_later() -> None:
    deadline = closing(2026, 10, 13)
    before = deadline - timedelta(seconds=1)
    assert escalation_level_after(deadline, before, SETTINGS, TZ) is EscalationLevel.NONE
    assert escalation_level_after(deadline, deadline, SETTINGS, TZ) is EscalationLevel.DEPARTMENT
    day_after = closing(2026, 10, 14)
    assert escalation_level_after(deadline, day_after, SETTINGS, TZ) is EscalationLevel.DEPARTMENT
    management = escalation_due_at(deadline, EscalationLevel.MANAGEMENT, SETTINGS, TZ)
    assert management == closing(2026, 10, 15)
    assert escalation_level_after(deadline, management, SETTINGS, TZ) is EscalationLevel.MANAGEMENT


def test_management_escalation_skips_the_holiday() -> None:
    deadline = closing(2026, 9, 30)  # then National Day; Oct 8 and 9 are the two days
    management = escalation_due_at(deadline, EscalationLevel.MANAGEMENT, SETTINGS, TZ)
    assert management == closing(2026, 10, 9)


def test_escalate_raises_the_level_once_and_only_while_open() -> None:
    state = new()  # due 16 March 17:30
    assert escalate(state, closing(2026, 3, 16) - timedelta(minutes=1), SETTINGS, TZ) is None
    first = escalate(state, closing(2026, 3, 16), SETTINGS, TZ)
    assert first is not None
    assert first.state.escalation_level is EscalationLevel.DEPARTMENT
    assert first.event.type == "escalated"
    assert first.event.data == {"level": 1, "from_level": 0}
    assert escalate(first.state, closing(2026, 3, 17), SETTINGS, TZ) is None
    second = escalate(first.state, closing(2026, 3, 18), SETTINGS, TZ)
    assert second is not None
    assert second.state.escalation_level is EscalationLevel.MANAGEMENT
    assert escalate(resolved(), closing(2026, 4, 30), SETTINGS, TZ) is None


def test_escalate_may_jump_straight_to_management() -> None:
    applied = escalate(new(), closing(2026, 4, 1), SETTINGS, TZ)
    assert applied is not None
    assert applied.state.escalation_level is EscalationLevel.MANAGEMENT


def test_next_escalation_at_is_for_scheduling() -> None:
    state = new()
    assert next_escalation_at(state, SETTINGS, TZ) == closing(2026, 3, 16)
    raised = replace(state, escalation_level=EscalationLevel.DEPARTMENT)
    assert next_escalation_at(raised, SETTINGS, TZ) == closing(2026, 3, 18)
    top = replace(state, escalation_level=EscalationLevel.MANAGEMENT)
    assert next_escalation_at(top, SETTINGS, TZ) is None
    assert next_escalation_at(resolved(), SETTINGS, TZ) is None


# --- receiving and ownership -------------------------------------------------------------------


def test_the_first_receiver_owns_a_new_complaint() -> None:
    state = new(Complexity.INVESTIGATION, ("er", "lab", "er"))
    assert state.status is Status.RECEIVED
    assert state.owner_id == state.receiver_id == "agent-1"
    assert state.departments_involved == ("er", "lab")
    assert state.complexity is Complexity.MULTI_DEPARTMENT
    assert state.deadline == closing(2026, 3, 23)
    assert state.escalation_level is EscalationLevel.NONE


@pytest.mark.parametrize("actor", [AGENT, ADMIN, ALLIANCE])
def test_the_owner_and_admins_may_act(actor: Actor) -> None:
    assert act(new(), StartInvestigation(), actor).state.status is Status.IN_PROGRESS


@pytest.mark.parametrize("actor", [OTHER, FOREIGN_ADMIN, PATIENT])
def test_others_may_not_act(actor: Actor) -> None:
    with pytest.raises(Forbidden) as caught:
        act(new(), StartInvestigation(), actor)
    assert caught.value.code == "not_complaint_owner"
    assert caught.value.extra == {"owner_id": "agent-1"}


def test_ownership_is_checked_before_the_status() -> None:
    with pytest.raises(Forbidden):
        act(resolved(), StartInvestigation(), OTHER)


def test_the_complainant_may_withdraw_but_nothing_else() -> None:
    applied = act(new(), Withdraw("settled with the doctor"), PATIENT)
    assert applied.state.status is Status.WITHDRAWN
    assert applied.event.actor_id == "acct-1"
    with pytest.raises(Forbidden):
        act(new(), Resolve("done"), PATIENT)
    stranger = Actor("acct-2", patient_ids=frozenset({"pat-2"}))
    with pytest.raises(Forbidden):
        act(new(), Withdraw("not mine"), stranger)


# --- handover ---------------------------------------------------------------------------------


def test_a_handover_changes_the_owner_and_keeps_the_status() -> None:
    started = act(new(), StartInvestigation()).state
    applied = act(started, Handover(" head-er ", "needs the department head"))
    assert applied.state.owner_id == "head-er"
    assert applied.state.receiver_id == "agent-1"
    assert applied.state.status is Status.IN_PROGRESS
    assert applied.event.type == "handed_over"
    assert applied.event.data == {
        "from_owner_id": "agent-1",
        "to_owner_id": "head-er",
        "reason": "needs the department head",
    }
    with pytest.raises(Forbidden):
        act(applied.state, Resolve("done"), AGENT)  # the old owner no longer may
    new_owner = Actor("head-er", org_id="org-1")
    assert act(applied.state, Resolve("done"), new_owner).state.status is Status.RESOLVED


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (Handover("", "reason"), "handover_target_required"),
        (Handover("   ", "reason"), "handover_target_required"),
        (Handover("head-er", " "), "handover_reason_required"),
        (Handover("agent-1", "myself"), "handover_same_owner"),
    ],
)
def test_a_handover_names_a_new_owner_and_a_reason(command: Handover, code: str) -> None:
    fails(Invalid, code, new(), command)


# --- the state machine -------------------------------------------------------------------------

ALL: list[Command] = [
    StartInvestigation(),
    Handover("x", "r"),
    Reclassify(Complexity.INVESTIGATION),
    Resolve("r"),
    RecordCallback(reached=True),
    Reopen("r"),
    Close(satisfaction=5),
    Withdraw("r"),
]
ALLOWED: dict[Status, set[str]] = {
    Status.RECEIVED: {"StartInvestigation", "Handover", "Reclassify", "Resolve", "Withdraw"},
    Status.IN_PROGRESS: {"Handover", "Reclassify", "Resolve", "Withdraw"},
    Status.RESOLVED: {"RecordCallback", "Reopen", "Close"},
    Status.CLOSED: set(),
    Status.WITHDRAWN: set(),
}
TARGET = {
    "StartInvestigation": Status.IN_PROGRESS,
    "Resolve": Status.RESOLVED,
    "Reopen": Status.IN_PROGRESS,
    "Close": Status.CLOSED,
    "Withdraw": Status.WITHDRAWN,
}


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("command", ALL, ids=lambda c: type(c).__name__)
def test_ensure_transition(status: Status, command: Command) -> None:
    name = type(command).__name__
    if name in ALLOWED[status]:
        assert ensure_transition(status, command) is TARGET.get(name, status)
    else:
        with pytest.raises(Conflict) as caught:
            ensure_transition(status, command)
        assert caught.value.code == "invalid_transition"
        assert caught.value.extra["current_status"] == status.value


def test_a_simple_complaint_is_resolved_on_the_spot() -> None:
    applied = act(new(Complexity.ON_THE_SPOT), Resolve("  explained the fee  "))
    assert applied.state.status is Status.RESOLVED
    assert applied.state.resolution == "explained the fee"
    assert applied.event.type == "resolved"


def test_a_resolution_is_required() -> None:
    fails(Invalid, "resolution_required", new(), Resolve("  "))


def test_reclassifying_recomputes_the_deadline_from_receipt() -> None:
    applied = act(new(), Reclassify(Complexity.INVESTIGATION, ("er", "lab")))
    assert applied.state.complexity is Complexity.MULTI_DEPARTMENT
    assert applied.state.deadline == closing(2026, 3, 23)
    assert applied.state.status is Status.RECEIVED
    assert applied.event.data["complexity"] == "multi_department"


def test_reopening_clears_the_resolution_and_callbacks_but_not_the_deadline() -> None:
    called = act(resolved(), RecordCallback(reached=True, note="still unhappy")).state
    applied = act(called, Reopen("the complainant disputes the resolution"))
    assert applied.state.status is Status.IN_PROGRESS
    assert applied.state.resolution is None
    assert applied.state.callbacks == ()
    assert applied.state.deadline == called.deadline
    fails(Invalid, "reopen_reason_required", called, Reopen(""))


def test_withdrawal_needs_a_reason_and_an_open_complaint() -> None:
    fails(Invalid, "withdraw_reason_required", new(), Withdraw(" "))
    fails(Conflict, "invalid_transition", resolved(), Withdraw("too late"))


# --- closing ----------------------------------------------------------------------------------


def test_the_full_path_to_closed() -> None:
    state = new()
    for command in (
        StartInvestigation(),
        Handover("pro-office", "patient relations takes it"),
    ):
        state = act(state, command).state
    owner = Actor("pro-office", org_id="org-1")
    state = act(state, Resolve("refund issued"), owner).state
    applied = act(state, Close(satisfaction=4, callback_reached=True, note="thanked us"), owner)
    assert applied.state.status is Status.CLOSED
    assert applied.state.satisfaction == 4
    assert not applied.state.closed_unreachable
    assert applied.state.callbacks == (
        Callback(local(2026, 3, 10), "pro-office", True, "thanked us"),
    )
    assert applied.event.type == "closed"
    assert applied.event.data == {"satisfaction": 4, "unreachable": False}
    fails(Conflict, "invalid_transition", applied.state, Reopen("again"), owner)


def test_closing_after_an_earlier_reached_callback() -> None:
    called = act(resolved(), RecordCallback(reached=True)).state
    assert called.status is Status.RESOLVED
    assert called.callbacks[0].by == "agent-1"
    assert act(called, Close(satisfaction=5)).state.satisfaction == 5


def test_closing_needs_a_callback() -> None:
    fails(Conflict, "callback_required", resolved(), Close(satisfaction=5))


def test_closing_a_reached_complainant_needs_the_satisfaction() -> None:
    fails(Invalid, "satisfaction_required", resolved(), Close(callback_reached=True))
    for bad in (0, 6):
        fails(
            Invalid,
            "satisfaction_out_of_range",
            resolved(),
            Close(satisfaction=bad, callback_reached=True),
        )


def test_closing_unreached_needs_the_set_number_of_attempts() -> None:
    state = act(resolved(), RecordCallback(reached=False)).state
    with pytest.raises(Conflict) as caught:
        act(state, Close(callback_reached=False))
    assert caught.value.code == "callback_attempts_insufficient"
    assert caught.value.extra == {"attempts": 2, "required": 3}
    state = act(state, RecordCallback(reached=False)).state
    applied = act(state, Close(callback_reached=False, note="no answer, third time"))
    assert applied.state.status is Status.CLOSED
    assert applied.state.closed_unreachable
    assert applied.state.satisfaction is None
    assert len(applied.state.callbacks) == 3


def test_no_satisfaction_without_reaching_the_complainant() -> None:
    state = resolved()
    for _ in range(3):
        state = act(state, RecordCallback(reached=False)).state
    fails(Invalid, "satisfaction_without_contact", state, Close(satisfaction=3))


def test_closing_from_in_progress_is_an_invalid_transition() -> None:
    started = act(new(), StartInvestigation()).state
    fails(Conflict, "invalid_transition", started, Close(satisfaction=5, callback_reached=True))
