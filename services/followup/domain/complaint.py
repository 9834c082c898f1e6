"""Patients' complaints under first-receiver responsibility (首诉负责制).

Whoever first receives a complaint owns it until they hand it over (to a named person,
with a reason); only the owner, or an admin of the organization, acts on it.

Deadlines follow 《医疗机构投诉管理办法》(国家卫健委 2019) 第三十四条, per organization
(:class:`ComplaintDeadlines`): a simple complaint is handled on the spot (by closing time
of the working day of receipt), one needing investigation gets feedback within 5 working
days, one involving several departments within 10 (see ``working_days`` for counting).

Statuses: received -> in_progress -> resolved -> closed; received/in_progress ->
withdrawn; resolved -> in_progress (reopen). A simple complaint may be resolved straight
from received. Handover, reclassification and callback attempts keep the status.

Escalation: while received or in_progress, level 1 (department head and the
patient-relations office) is due at the deadline, level 2 (hospital management) two
working days after it (settings). Levels never go down.

The vocabulary (enums, labels) lives in ``complaint_vocab.py`` and is re-exported here.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.followup.domain.complaint_vocab import CATEGORY_LABELS as CATEGORY_LABELS
from services.followup.domain.complaint_vocab import OPEN_STATUSES as OPEN_STATUSES
from services.followup.domain.complaint_vocab import SEVERITY_LABELS as SEVERITY_LABELS
from services.followup.domain.complaint_vocab import Category as Category
from services.followup.domain.complaint_vocab import Channel as Channel
from services.followup.domain.complaint_vocab import Complexity as Complexity
from services.followup.domain.complaint_vocab import EscalationLevel as EscalationLevel
from services.followup.domain.complaint_vocab import Label as Label
from services.followup.domain.complaint_vocab import Severity as Severity
from services.followup.domain.complaint_vocab import Status as Status
from services.followup.domain.working_days import add_working_days
from shared.domain_errors import Conflict, DomainError, Forbidden, Invalid


class ComplaintDeadlines(BaseModel):
    """An organization's complaint deadlines, in working days (defaults: the 2019 rules)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    on_the_spot_working_days: int = Field(0, ge=0, le=5, description="0: the same day")
    feedback_working_days: int = Field(5, ge=1, le=30)
    multi_department_working_days: int = Field(10, ge=1, le=60)
    closing_time: time = Field(time(17, 30), description="local, e.g. 17:30")
    escalate_department_after_working_days: int = Field(0, ge=0, le=30)
    escalate_management_after_working_days: int = Field(2, ge=1, le=60)
    callback_attempts_when_unreachable: int = Field(
        3, ge=1, le=10, description="failed callbacks before closing without satisfaction"
    )

    @model_validator(mode="after")
    def _ordered(self) -> ComplaintDeadlines:
        days = [self.on_the_spot_working_days, self.feedback_working_days]
        days.append(self.multi_department_working_days)
        if days != sorted(days):
            raise ValueError("on the spot <= feedback <= multi-department working days")
        first = self.escalate_department_after_working_days
        if self.escalate_management_after_working_days <= first:
            raise ValueError("management escalation comes after the department's")
        return self


def effective_complexity(complexity: Complexity, departments_involved: Sequence[str]) -> Complexity:
    """Several distinct departments involved always means the multi-department deadline."""
    if len(set(departments_involved)) > 1:
        return Complexity.MULTI_DEPARTMENT
    return complexity


def deadline_for(
    received_at: datetime,
    complexity: Complexity,
    departments_involved: Sequence[str],
    settings: ComplaintDeadlines,
    tz: str,
) -> datetime:
    """When feedback is due (aware UTC), counted from the day of receipt."""
    days = {
        Complexity.ON_THE_SPOT: settings.on_the_spot_working_days,
        Complexity.INVESTIGATION: settings.feedback_working_days,
        Complexity.MULTI_DEPARTMENT: settings.multi_department_working_days,
    }[effective_complexity(complexity, departments_involved)]
    return add_working_days(received_at, days, tz, settings.closing_time)


def escalation_due_at(
    deadline: datetime, level: EscalationLevel, settings: ComplaintDeadlines, tz: str
) -> datetime:
    """When ``level`` falls due: the deadline, or closing time n working days after it."""
    days = {
        EscalationLevel.NONE: 0,
        EscalationLevel.DEPARTMENT: settings.escalate_department_after_working_days,
        EscalationLevel.MANAGEMENT: settings.escalate_management_after_working_days,
    }[level]
    return deadline if days == 0 else add_working_days(deadline, days, tz, settings.closing_time)


def escalation_level_after(
    deadline: datetime, now: datetime, settings: ComplaintDeadlines, tz: str
) -> EscalationLevel:
    """The escalation level an unresolved complaint should be at, at ``now``."""
    level = EscalationLevel.NONE
    for candidate in (EscalationLevel.DEPARTMENT, EscalationLevel.MANAGEMENT):
        if now >= escalation_due_at(deadline, candidate, settings, tz):
            level = candidate
    return level


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts. Map from the principal: an org admin has ``is_admin`` and its ``org_id``;
    a patient account gives its ``patient_ids`` (they may withdraw their own complaint)."""

    user_id: str
    org_id: str | None = None
    is_admin: bool = False
    is_alliance_admin: bool = False
    patient_ids: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Callback:
    """One callback attempt to the complainant (回访)."""

    at: datetime
    by: str
    reached: bool
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ComplaintState:
    org_id: str
    status: Status
    owner_id: str
    receiver_id: str  # the first receiver (首诉人); never changes
    complainant_patient_id: str | None
    complexity: Complexity
    departments_involved: tuple[str, ...]
    received_at: datetime
    deadline: datetime
    escalation_level: EscalationLevel = EscalationLevel.NONE
    resolution: str | None = None
    callbacks: tuple[Callback, ...] = ()
    satisfaction: int | None = None  # 1-5, the complainant's, with the handling
    closed_unreachable: bool = False


@dataclass(frozen=True, slots=True)
class ComplaintEvent:
    """What happened, for the complaint's history (and the outbox)."""

    type: str
    actor_id: str
    at: datetime
    data: Mapping[str, str | int | bool | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Applied:
    state: ComplaintState
    event: ComplaintEvent


def receive(
    *,
    org_id: str,
    receiver_id: str,
    received_at: datetime,
    complexity: Complexity,
    departments_involved: Sequence[str],
    settings: ComplaintDeadlines,
    tz: str,
    complainant_patient_id: str | None = None,
) -> ComplaintState:
    """A new complaint, owned by its first receiver (the agent who took the call; for
    patient_api, the staff member the organization routes new complaints to)."""
    departments = tuple(dict.fromkeys(departments_involved))
    return ComplaintState(
        org_id=org_id,
        status=Status.RECEIVED,
        owner_id=receiver_id,
        receiver_id=receiver_id,
        complainant_patient_id=complainant_patient_id,
        complexity=effective_complexity(complexity, departments),
        departments_involved=departments,
        received_at=received_at,
        deadline=deadline_for(received_at, complexity, departments, settings, tz),
    )


@dataclass(frozen=True, slots=True)
class StartInvestigation:
    pass


@dataclass(frozen=True, slots=True)
class Handover:
    to_owner_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Reclassify:
    complexity: Complexity
    departments_involved: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Resolve:
    resolution: str


@dataclass(frozen=True, slots=True)
class RecordCallback:
    reached: bool
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Reopen:
    reason: str


@dataclass(frozen=True, slots=True)
class Close:
    """Close after the callback. ``callback_reached`` (when not None) records the final
    callback attempt first; a reached complainant's satisfaction (1-5) is required."""

    satisfaction: int | None = None
    callback_reached: bool | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Withdraw:
    reason: str


Command = (
    StartInvestigation
    | Handover
    | Reclassify
    | Resolve
    | RecordCallback
    | Reopen
    | Close
    | Withdraw
)

_OPEN, _RESOLVED = OPEN_STATUSES, frozenset({Status.RESOLVED})
# command -> (its name, the statuses it is allowed in, the status it leads to; None: same)
TRANSITIONS: Mapping[type[Command], tuple[str, frozenset[Status], Status | None]] = {
    StartInvestigation: ("start_investigation", frozenset({Status.RECEIVED}), Status.IN_PROGRESS),
    Handover: ("handover", _OPEN, None),
    Reclassify: ("reclassify", _OPEN, None),
    Resolve: ("resolve", _OPEN, Status.RESOLVED),
    RecordCallback: ("record_callback", _RESOLVED, None),
    Reopen: ("reopen", _RESOLVED, Status.IN_PROGRESS),
    Close: ("close", _RESOLVED, Status.CLOSED),
    Withdraw: ("withdraw", _OPEN, Status.WITHDRAWN),
}


_ERRORS: Mapping[str, tuple[type[DomainError], str, str]] = {
    "invalid_transition": (Conflict, "not allowed in this status", "投诉当前状态不允许此操作"),
    "not_complaint_owner": (
        Forbidden,
        "only the complaint's current owner or an admin may act on it",
        "仅投诉当前负责人或管理员可处理该投诉",
    ),
    "handover_target_required": (Invalid, "name the new owner", "请指定接收人"),
    "handover_reason_required": (Invalid, "give the handover's reason", "请填写转交原因"),
    "handover_same_owner": (Invalid, "already the complaint's owner", "接收人已是负责人"),
    "resolution_required": (Invalid, "describe the resolution", "请填写处理结果"),
    "reopen_reason_required": (Invalid, "give the reason to reopen", "请填写重新处理原因"),
    "withdraw_reason_required": (Invalid, "give the withdrawal's reason", "请填写撤诉原因"),
    "callback_required": (Conflict, "call the complainant back first", "请先回访投诉人"),
    "satisfaction_required": (Invalid, "record the satisfaction (1-5)", "请记录满意度（1-5）"),
    "satisfaction_out_of_range": (Invalid, "satisfaction is 1 to 5", "满意度为1-5"),
    "satisfaction_without_contact": (Invalid, "the complainant was not reached", "未联系到投诉人"),
    "callback_attempts_insufficient": (Conflict, "more callback attempts needed", "回访次数不足"),
}


def _error(code: str, **extra: str | int) -> DomainError:
    kind, detail, detail_zh = _ERRORS[code]
    return kind(code, detail, detail_zh=detail_zh, extra=extra)


def ensure_transition(status: Status, command: Command) -> Status:
    """The status ``command`` leads to from ``status``; Conflict invalid_transition if
    it is not allowed there."""
    name, allowed, target = TRANSITIONS[type(command)]
    if status not in allowed:
        raise _error("invalid_transition", current_status=str(status), command=name)
    return status if target is None else target


def ensure_may_act(state: ComplaintState, actor: Actor, command: Command) -> None:
    """The owner, an admin of the organization or an alliance admin; for a withdrawal,
    also the complainant. Else Forbidden not_complaint_owner."""
    if actor.user_id == state.owner_id or actor.is_alliance_admin:
        return
    if actor.is_admin and actor.org_id == state.org_id:
        return
    patient = state.complainant_patient_id
    if isinstance(command, Withdraw) and patient is not None and patient in actor.patient_ids:
        return
    raise _error("not_complaint_owner", owner_id=state.owner_id)


def _required(value: str | None, code: str) -> str:
    if value is None or not value.strip():
        raise _error(code)
    return value.strip()


def _close(
    state: ComplaintState, command: Close, actor: Actor, at: datetime, settings: ComplaintDeadlines
) -> ComplaintState:
    _required(state.resolution, "resolution_required")
    callbacks = state.callbacks
    if command.callback_reached is not None:
        callbacks += (Callback(at, actor.user_id, command.callback_reached, command.note),)
    if not callbacks:
        raise _error("callback_required")
    reached = any(c.reached for c in callbacks)
    if reached and command.satisfaction is None:
        raise _error("satisfaction_required")
    if command.satisfaction is not None:
        if not reached:
            raise _error("satisfaction_without_contact")
        if not 1 <= command.satisfaction <= 5:
            raise _error("satisfaction_out_of_range")
    required = settings.callback_attempts_when_unreachable
    if not reached and len(callbacks) < required:
        raise _error("callback_attempts_insufficient", attempts=len(callbacks), required=required)
    return replace(
        state,
        callbacks=callbacks,
        satisfaction=command.satisfaction,
        closed_unreachable=not reached,
    )


def apply(
    state: ComplaintState,
    actor: Actor,
    command: Command,
    *,
    at: datetime,
    settings: ComplaintDeadlines,
    tz: str,
) -> Applied:
    """Check and apply ``command``: the new state and the event to record. Raises
    Forbidden (ownership) before Conflict (status) before Invalid (the command)."""
    ensure_may_act(state, actor, command)
    target = ensure_transition(state.status, command)
    data: dict[str, str | int | bool | None] = {}
    new = replace(state, status=target)
    match command:
        case StartInvestigation():
            event = "investigation_started"
        case Handover():
            to_owner = _required(command.to_owner_id, "handover_target_required")
            reason = _required(command.reason, "handover_reason_required")
            if to_owner == state.owner_id:
                raise _error("handover_same_owner")
            new = replace(new, owner_id=to_owner)
            event = "handed_over"
            data = {"from_owner_id": state.owner_id, "to_owner_id": to_owner, "reason": reason}
        case Reclassify():
            departments = tuple(dict.fromkeys(command.departments_involved))
            deadline = deadline_for(
                state.received_at, command.complexity, departments, settings, tz
            )
            effective = effective_complexity(command.complexity, departments)
            new = replace(new, complexity=effective, departments_involved=departments)
            new = replace(new, deadline=deadline)
            event = "reclassified"
            data = {"complexity": str(effective), "deadline": deadline.isoformat()}
        case Resolve():
            new = replace(new, resolution=_required(command.resolution, "resolution_required"))
            event = "resolved"
        case RecordCallback():
            attempt = Callback(at, actor.user_id, command.reached, command.note)
            new = replace(new, callbacks=(*state.callbacks, attempt))
            event = "callback_recorded"
            data = {"reached": command.reached}
        case Reopen():
            reason = _required(command.reason, "reopen_reason_required")
            new = replace(new, resolution=None, callbacks=())
            event = "reopened"
            data = {"reason": reason}
        case Close():
            new = replace(_close(state, command, actor, at, settings), status=target)
            event = "closed"
            data = {"satisfaction": new.satisfaction, "unreachable": new.closed_unreachable}
        case Withdraw():
            event = "withdrawn"
            data = {"reason": _required(command.reason, "withdraw_reason_required")}
    return Applied(new, ComplaintEvent(event, actor.user_id, at, data))


def escalate(
    state: ComplaintState, now: datetime, settings: ComplaintDeadlines, tz: str
) -> Applied | None:
    """The escalation due at ``now`` for an open complaint, or None (the system acts)."""
    if state.status not in OPEN_STATUSES:
        return None
    level = escalation_level_after(state.deadline, now, settings, tz)
    if level <= state.escalation_level:
        return None
    data: dict[str, str | int | bool | None] = {"level": int(level)}
    data["from_level"] = int(state.escalation_level)
    event = ComplaintEvent("escalated", "system", now, data)
    return Applied(replace(state, escalation_level=level), event)


def next_escalation_at(
    state: ComplaintState, settings: ComplaintDeadlines, tz: str
) -> datetime | None:
    """When the next escalation falls due (for scheduling), or None."""
    if state.status not in OPEN_STATUSES or state.escalation_level >= EscalationLevel.MANAGEMENT:
        return None
    return escalation_due_at(
        state.deadline, EscalationLevel(state.escalation_level + 1), settings, tz
    )
