"""Patient transport and escort (陪检 / 院内转运): the states, the porters' steps, the SLA
deadlines and the dispatch score. Pure rules: no I/O.

A transport moves one patient from a place (a ward and bed, or an organization) to
another (an exam room, a theatre, a department, or another organization: an ambulance
transfer after an accepted emergency referral). Its states::

    requested -> assigned -> en_route -> with_patient -> arrived -> handed_over
                                                                  -> returned -> completed
                                                                  -> completed
    any live state before the patient is picked up -> cancelled
    any state after assignment                     -> failed (cannot complete, with a reason)

Each step is given by the assigned porter from the handheld app (``accept`` means the
porter took the job and is on the way: ``en_route``); the organization's dispatcher (a
coordinator) may give any step in their place (an override, audited). A step out of order
is 409 ``step_out_of_order``; a step by anyone else 403 ``not_assigned_porter``.

Deadlines by priority (minutes, settings ``transport_minutes``; defaults):

=========  ========  ======
priority   response  pickup
=========  ========  ======
emergency  5         15
urgent     10        30
routine    30        60
=========  ========  ======

*Response*: a porter has accepted the job; *pickup*: the porter has the patient. A
transport for a set time (an exam at 10:00) is due to be picked up at that time and to be
accepted the difference of the two deadlines before it (never earlier than the response
deadline counted from the request).

Dispatch ranks the porters on duty who hold every skill the mode and needs call for and
carry fewer than ``max_load`` live jobs: a porter whose zone is the pickup zone first, then
the lighter load, then the id (a stable order).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.domain_errors import Conflict, Forbidden, Invalid


class State(StrEnum):
    REQUESTED = "requested"
    ASSIGNED = "assigned"
    EN_ROUTE = "en_route"
    WITH_PATIENT = "with_patient"
    ARRIVED = "arrived"
    HANDED_OVER = "handed_over"
    RETURNED = "returned"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class Step(StrEnum):
    ACCEPT = "accept"
    PICKED_UP = "picked_up"
    ARRIVED = "arrived"
    HANDED_OVER = "handed_over"
    RETURNED = "returned"
    COMPLETED = "completed"
    CANNOT_COMPLETE = "cannot_complete"


class Priority(StrEnum):
    EMERGENCY = "emergency"
    URGENT = "urgent"
    ROUTINE = "routine"


class Mode(StrEnum):
    WALK = "walk_escort"
    WHEELCHAIR = "wheelchair"
    STRETCHER = "stretcher"
    BED = "bed"
    AMBULANCE = "ambulance"


class Need(StrEnum):
    OXYGEN = "oxygen"
    MONITOR = "monitor"
    ISOLATION = "isolation"
    NURSE = "nurse_escort"  # a ward nurse goes along: the ward's matter, no porter skill


TERMINAL = frozenset({State.COMPLETED, State.CANCELLED, State.FAILED})
LIVE = frozenset(State) - TERMINAL
# a porter's live jobs (its load); a transport not yet assigned has no porter
WORKING = frozenset(
    {
        State.ASSIGNED,
        State.EN_ROUTE,
        State.WITH_PATIENT,
        State.ARRIVED,
        State.HANDED_OVER,
        State.RETURNED,
    }
)
# cancelled (by the ward, the dispatcher, or with its appointment) until the patient is taken
CANCELLABLE = frozenset({State.REQUESTED, State.ASSIGNED, State.EN_ROUTE})
# moved (a rescheduled appointment) or reassigned (by the dispatcher) until then as well
MOVABLE = CANCELLABLE
STEPS: dict[Step, tuple[frozenset[State], State]] = {
    Step.ACCEPT: (frozenset({State.ASSIGNED}), State.EN_ROUTE),
    Step.PICKED_UP: (frozenset({State.EN_ROUTE}), State.WITH_PATIENT),
    Step.ARRIVED: (frozenset({State.WITH_PATIENT}), State.ARRIVED),
    Step.HANDED_OVER: (frozenset({State.ARRIVED}), State.HANDED_OVER),
    Step.RETURNED: (frozenset({State.HANDED_OVER}), State.RETURNED),
    Step.COMPLETED: (frozenset({State.HANDED_OVER, State.RETURNED}), State.COMPLETED),
    Step.CANNOT_COMPLETE: (WORKING, State.FAILED),
}
SKILL_OF_MODE = {Mode.STRETCHER: "stretcher", Mode.BED: "stretcher", Mode.AMBULANCE: "ambulance"}
SKILL_OF_NEED = {Need.OXYGEN: "oxygen", Need.MONITOR: "monitor", Need.ISOLATION: "isolation"}


def next_state(state: str, step: Step) -> State:
    """The state ``step`` leads to from ``state``: 409 ``step_out_of_order`` if it may not."""
    sources, target = STEPS[step]
    if State(state) not in sources:
        allowed = sorted(s.value for s in sources)
        raise Conflict(
            "step_out_of_order",
            f"a transport that is {state} cannot be given '{step.value}' "
            f"(allowed from: {', '.join(allowed)})",
            detail_zh=f"转运当前状态为 {state}，不能执行该步骤",
            extra={"current_state": state, "step": step.value, "allowed_from": allowed},
        )
    return target


def check_porter(assigned: str | None, caller: str, *, dispatcher: bool) -> None:
    """403 ``not_assigned_porter`` unless the caller is the transport's porter or its
    organization's dispatcher (who may give a step in the porter's place)."""
    if dispatcher or (assigned is not None and assigned == caller):
        return
    raise Forbidden(
        "not_assigned_porter",
        "only the porter this transport is assigned to (or the dispatcher) records its steps",
        detail_zh="仅被指派的陪检员（或调度员）可记录该转运步骤",
    )


def check_cancellable(state: str) -> None:
    if State(state) not in CANCELLABLE:
        raise Conflict(
            "transport_under_way",
            f"a transport that is {state} can no longer be cancelled (the porter has the "
            "patient or it has ended): record 'cannot_complete' instead",
            detail_zh="转运已在进行或已结束，不能取消",
            extra={"current_state": state},
        )


def check_movable(state: str) -> None:
    if State(state) not in MOVABLE:
        raise Conflict(
            "transport_under_way",
            f"a transport that is {state} can no longer be reassigned",
            detail_zh="转运已在进行或已结束，不能改派",
            extra={"current_state": state},
        )


def require_reason(reason: str | None, what: str) -> str:
    if reason is None or not reason.strip():
        raise Invalid(
            "reason_required",
            f"'{what}' needs a reason",
            detail_zh="请填写原因",
            extra={"field": "reason"},
        )
    return reason.strip()


def required_skills(mode: str, needs: Iterable[str]) -> frozenset[str]:
    """What a porter must be able to do: a stretcher or bed move, an ambulance crew's work,
    oxygen, a monitor, isolation precautions."""
    skills = {SKILL_OF_MODE[m] for m in (Mode(mode),) if m in SKILL_OF_MODE}
    skills |= {SKILL_OF_NEED[n] for n in map(Need, needs) if n in SKILL_OF_NEED}
    return frozenset(skills)


@dataclass(frozen=True)
class Deadlines:
    response_due: datetime  # accepted by a porter
    pickup_due: datetime  # the porter has the patient


def deadlines(
    requested_at: datetime, pickup_at: datetime | None, response: float, pickup: float
) -> Deadlines:
    """``response`` / ``pickup``: the priority's minutes. ``pickup_at``: a set time (None: now)."""
    earliest_response = requested_at + timedelta(minutes=response)
    if pickup_at is None or pickup_at <= requested_at + timedelta(minutes=pickup):
        return Deadlines(earliest_response, requested_at + timedelta(minutes=pickup))
    return Deadlines(
        max(earliest_response, pickup_at - timedelta(minutes=pickup - response)), pickup_at
    )


@dataclass(frozen=True)
class Porter:
    porter_id: str
    zones: frozenset[str]
    skills: frozenset[str]
    on_duty: bool
    load: int  # live jobs now


@dataclass(frozen=True)
class Ranked:
    porter: Porter
    zone_match: bool
    excluded: str | None  # why this porter cannot take the job, or None


def rank_porters(
    porters: Iterable[Porter], zone: str | None, skills: frozenset[str], max_load: int
) -> list[Ranked]:
    """Every porter with why they may not take the job; those who may first, best first."""
    ranked = []
    for p in porters:
        missing = sorted(skills - p.skills)
        excluded = (
            "off_duty"
            if not p.on_duty
            else f"lacks {', '.join(missing)}"
            if missing
            else "at_capacity"
            if p.load >= max_load
            else None
        )
        ranked.append(Ranked(p, zone is not None and zone in p.zones, excluded))
    return sorted(
        ranked,
        key=lambda r: (r.excluded is not None, not r.zone_match, r.porter.load, r.porter.porter_id),
    )


def best_porter(
    porters: Iterable[Porter], zone: str | None, skills: frozenset[str], max_load: int
) -> Porter | None:
    ranked = rank_porters(porters, zone, skills, max_load)
    return ranked[0].porter if ranked and ranked[0].excluded is None else None
