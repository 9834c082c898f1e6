"""Bed arrangement (住院床位预约): which bed fits which admission notice, who comes first,
how long a waiting patient should expect to wait, and the figures. Pure rules, no I/O.

* **Fit** (hard filters, checked when a bed manager assigns and when candidates are
  proposed): the bed is ``free``; the ward's gender policy (``male`` / ``female`` /
  ``mixed``) admits the patient's sex (from the national ID); a notice needing isolation
  goes to a ward that can isolate; one needing monitoring to a ``monitored`` or ``icu``
  bed; a ward of another department only when the organization's bed policy lets the
  notice's department borrow from the ward's (借床).
* **Order**: urgency first (emergency, urgent, routine), then who has waited longest (the
  notice issued first), then the notice id (stable).
* **Estimated wait** of a waiting patient: ``position`` × the department's recent median
  gap between consecutive admissions (how long the line waits for each bed to turn over),
  from its admissions of the last :data:`ESTIMATE_WINDOW_DAYS` days; ``None`` with fewer
  than two admissions to learn from.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from services.appointments.domain.errors import Conflict, Invalid

ESTIMATE_WINDOW_DAYS = 30
DEPT_CODE = r"^[A-Za-z0-9_-]{1,40}$"


class Urgency(StrEnum):
    EMERGENCY = "emergency"
    URGENT = "urgent"
    ROUTINE = "routine"


URGENCY_ORDER = {Urgency.EMERGENCY: 0, Urgency.URGENT: 1, Urgency.ROUTINE: 2}


class GenderPolicy(StrEnum):
    MALE = "male"
    FEMALE = "female"
    MIXED = "mixed"


class BedKind(StrEnum):
    STANDARD = "standard"
    ICU = "icu"
    MONITORED = "monitored"


class BedStatus(StrEnum):
    FREE = "free"
    OCCUPIED = "occupied"
    CLEANING = "cleaning"
    RESERVED = "reserved"
    BLOCKED = "blocked"


MONITORING_KINDS = frozenset({BedKind.ICU, BedKind.MONITORED})


class Borrowing(BaseModel):
    """``borrower`` may use beds of ``lender``'s wards (department codes; ``*``: any)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    borrower: str = Field(pattern=r"^(\*|[A-Za-z0-9_-]{1,40})$")
    lender: str = Field(pattern=r"^(\*|[A-Za-z0-9_-]{1,40})$")


class BedPolicy(BaseModel):
    """An organization's bed policy: how long an offer waits, and who may borrow beds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    offer_minutes: int = Field(120, ge=1, le=2880)  # the patient confirms within this
    borrowing: list[Borrowing] = Field(default_factory=list, max_length=500)


@dataclass(frozen=True)
class NoticeFacts:
    """What the rules need of an admission notice."""

    id: str
    department_code: str
    sex: str  # "male" | "female"
    urgency: Urgency
    issued_at: datetime
    isolation: bool = False
    monitoring: bool = False


@dataclass(frozen=True)
class BedFacts:
    """What the rules need of a bed and its ward."""

    id: str
    status: BedStatus
    kind: BedKind
    department_code: str  # the ward's department
    gender_policy: GenderPolicy
    isolation: bool  # the ward can isolate


def may_borrow(policy: BedPolicy, borrower: str, lender: str) -> bool:
    """May ``borrower``'s patients use a bed of ``lender``'s wards?"""
    if borrower == lender:
        return True
    return any(
        rule.borrower in ("*", borrower) and rule.lender in ("*", lender)
        for rule in policy.borrowing
    )


def misfit(notice: NoticeFacts, bed: BedFacts, policy: BedPolicy) -> str | None:
    """Why the bed does not fit the notice (the problem code), or ``None`` when it does."""
    if bed.status is not BedStatus.FREE:
        return "bed_not_free"
    if bed.gender_policy is not GenderPolicy.MIXED and bed.gender_policy.value != notice.sex:
        return "gender_mismatch"
    if notice.isolation and not bed.isolation:
        return "isolation_mismatch"
    if notice.monitoring and bed.kind not in MONITORING_KINDS:
        return "monitoring_mismatch"
    if not may_borrow(policy, notice.department_code, bed.department_code):
        return "borrowing_not_allowed"
    return None


def is_borrowed(notice: NoticeFacts, bed: BedFacts) -> bool:
    return notice.department_code != bed.department_code


def check_fit(notice: NoticeFacts, bed: BedFacts, policy: BedPolicy) -> None:
    """Raise the refusal for a bed that does not fit: ``bed_not_free`` 409; a gender,
    isolation or monitoring mismatch and ``borrowing_not_allowed`` 422 (the request is
    wrong for this patient, not the caller's right)."""
    code = misfit(notice, bed, policy)
    if code is None:
        return
    if code == "bed_not_free":
        raise Conflict(
            code,
            f"the bed is {bed.status.value}",
            detail_zh="该床位当前不可分配",
            extra={"bed_id": bed.id, "bed_status": bed.status.value},
        )
    details = {
        "gender_mismatch": ("the ward does not admit the patient's sex", "病区性别不符"),
        "isolation_mismatch": ("the patient needs isolation; the ward has none", "病区无隔离条件"),
        "monitoring_mismatch": ("the patient needs a monitored bed", "患者需要监护床位"),
        "borrowing_not_allowed": (
            "the bed policy does not let this department borrow from the ward's",
            "床位政策不允许向该科室借床",
        ),
    }
    detail, detail_zh = details[code]
    raise Invalid(code, detail, detail_zh=detail_zh, extra={"bed_id": bed.id})


def rank_key(notice: NoticeFacts) -> tuple[int, datetime, str]:
    """Urgency first, then the longest wait, then the id."""
    return (URGENCY_ORDER[notice.urgency], notice.issued_at, notice.id)


def rank(notices: Iterable[NoticeFacts]) -> list[NoticeFacts]:
    return sorted(notices, key=rank_key)


def candidates_for_bed(
    bed: BedFacts, notices: Iterable[NoticeFacts], policy: BedPolicy
) -> list[NoticeFacts]:
    """The waiting notices the bed fits, best first."""
    return rank(n for n in notices if misfit(n, bed, policy) is None)


def beds_for_notice(
    notice: NoticeFacts, beds: Iterable[BedFacts], policy: BedPolicy
) -> list[BedFacts]:
    """The beds that fit the notice: its own department's first, then borrowed ones."""
    fitting = [b for b in beds if misfit(notice, b, policy) is None]
    return sorted(fitting, key=lambda b: (is_borrowed(notice, b), b.id))


def position_of(notice: NoticeFacts, waiting: Iterable[NoticeFacts]) -> int:
    """1 for the first in the department's line (by :func:`rank_key`)."""
    mine = rank_key(notice)
    return 1 + sum(1 for other in waiting if other.id != notice.id and rank_key(other) < mine)


def estimated_wait(position: int, admissions: Sequence[datetime]) -> timedelta | None:
    """``position`` × the median gap between consecutive admissions (see the module doc)."""
    if position < 1 or len(admissions) < 2:
        return None
    times = sorted(admissions)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    return timedelta(seconds=statistics.median(gaps) * position)


def percentile(values: Sequence[float], pct: float) -> float | None:
    """The nearest-rank percentile (``pct`` in 0..100); ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    index = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[index - 1]


def average(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def occupancy(statuses: Iterable[str]) -> float | None:
    """Occupied (or reserved) beds over the beds in use (blocked beds do not count)."""
    usable = [s for s in statuses if s != BedStatus.BLOCKED]
    if not usable:
        return None
    taken = sum(1 for s in usable if s in (BedStatus.OCCUPIED, BedStatus.RESERVED))
    return taken / len(usable)


def turnover(admissions: int, beds: int) -> float | None:
    """Admissions per bed in use over the period."""
    return admissions / beds if beds else None
