"""The hotline's call list: the order agents work it in, and what a call's outcome does.

Pure: no I/O. The service applies the :class:`Decision` to the task.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Outcome(StrEnum):
    REACHED = "reached"
    AGREED_TO_VISIT = "agreed_to_visit"  # books the revisit through appointments
    CALL_BACK = "call_back"  # call again on a date the patient named
    NO_ANSWER = "no_answer"
    WRONG_NUMBER = "wrong_number"
    REFUSED = "refused"
    MOVED_AWAY = "moved_away"
    VISITED_ELSEWHERE = "visited_elsewhere"
    TRANSFERRED = "transferred"
    DECEASED = "deceased"


class RiskLevel(StrEnum):
    NONE = "none"
    MODERATE = "moderate"
    HIGH = "high"
    URGENT = "urgent"


RISK_RANK = {RiskLevel.NONE: 0, RiskLevel.MODERATE: 1, RiskLevel.HIGH: 2, RiskLevel.URGENT: 3}


def higher_risk(a: str, b: str) -> str:
    return a if RISK_RANK[RiskLevel(a)] >= RISK_RANK[RiskLevel(b)] else b


class Next(StrEnum):
    DONE = "done"  # the task is finished with this outcome
    RETRY = "retry"  # due again at ``due_at`` (no answer, or the patient's date)
    UNREACHABLE = "unreachable"  # no answer after the last try: a nurse takes over
    END_PLAN = "end_plan"  # the patient died: the plan ends, its open tasks are cancelled


@dataclass(frozen=True, slots=True)
class Decision:
    next: Next
    due_at: datetime | None = None
    revisit: bool = False  # ask appointments for a revisit


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retry_after: timedelta = timedelta(hours=2)
    max_tries: int = 3


class OutcomeError(ValueError):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def decide(
    outcome: Outcome,
    *,
    no_answers_before: int,
    now: datetime,
    call_back_at: datetime | None,
    policy: RetryPolicy,
) -> Decision:
    """What the outcome of one attempt does to its task.

    ``no_answers_before``: the task's unanswered tries before this one. No answer is
    tried again ``retry_after`` later (another time of day) until ``max_tries`` tries
    went unanswered; then the patient is unreachable and a nurse takes over.
    """
    if outcome is Outcome.CALL_BACK:
        if call_back_at is None:
            raise OutcomeError("call_back_at_required", "a call back needs the date and time")
        if call_back_at <= now:
            raise OutcomeError("call_back_at_past", "the call back must be in the future")
        return Decision(Next.RETRY, due_at=call_back_at)
    if call_back_at is not None:
        raise OutcomeError("call_back_at_unexpected", "call_back_at goes with call_back only")
    if outcome is Outcome.NO_ANSWER:
        tries = no_answers_before + 1
        if tries >= policy.max_tries:
            return Decision(Next.UNREACHABLE)
        return Decision(Next.RETRY, due_at=now + policy.retry_after)
    if outcome is Outcome.DECEASED:
        return Decision(Next.END_PLAN)
    return Decision(Next.DONE, revisit=outcome is Outcome.AGREED_TO_VISIT)


def order_key(risk_level: str, due_at: datetime, now: datetime) -> tuple[int, int, datetime]:
    """Sort key of the call list: higher risk first, then more days overdue, then due time."""
    overdue_days = max(0, (now - due_at).days)
    return (-RISK_RANK[RiskLevel(risk_level)], -overdue_days, due_at)
