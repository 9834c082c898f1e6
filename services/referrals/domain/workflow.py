"""The referral workflow: FHIR Task statuses with a business status beside them.

Public referral specifications (HL7 FHIR R4 Task/ServiceRequest, the eReferral guides)
model a referral as a Task whose ``status`` says where the request stands and whose
``businessStatus`` says what the people involved are waiting for. Here:

==================  =======================  ==========================================
Task status         business status          meaning
==================  =======================  ==========================================
draft               draft                    written, not sent
requested           awaiting_triage          at a receiver, waiting for accept/reject
accepted            accepted                 accepted; no visit asked (a downward one)
accepted            awaiting_booking         accepted; a visit is being booked
accepted            booking_failed           the booking was refused: pick another date
accepted            booking_cancelled        the visit was cancelled: book again
in-progress         booked                   the visit is booked
in-progress         arrived                  the patient checked in
in-progress         no_show                  the patient did not come
completed           summary_sent             the summary went back: the loop is closed
rejected            rejected                 every receiver declined (or none was found)
cancelled           cancelled                the sender withdrew it
on-hold             on_hold                  paused by a coordinator
entered-in-error    entered_in_error         it should never have existed
==================  =======================  ==========================================

:data:`TRANSITIONS` says, for each command, the statuses it may start from, the status it
leads to and which side may give it. Pure rules: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shared.domain_errors import Conflict, Forbidden, Invalid


class TaskStatus(StrEnum):
    DRAFT = "draft"
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ON_HOLD = "on-hold"
    ENTERED_IN_ERROR = "entered-in-error"


class BusinessStatus(StrEnum):
    DRAFT = "draft"
    AWAITING_TRIAGE = "awaiting_triage"
    ACCEPTED = "accepted"
    AWAITING_BOOKING = "awaiting_booking"
    BOOKING_FAILED = "booking_failed"
    BOOKING_CANCELLED = "booking_cancelled"
    BOOKED = "booked"
    ARRIVED = "arrived"
    NO_SHOW = "no_show"
    SUMMARY_SENT = "summary_sent"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    ON_HOLD = "on_hold"
    ENTERED_IN_ERROR = "entered_in_error"


TERMINAL = frozenset(
    {
        TaskStatus.REJECTED,
        TaskStatus.COMPLETED,
        TaskStatus.CANCELLED,
        TaskStatus.ENTERED_IN_ERROR,
    }
)
# a live case holds the patient's episode: a new referral for it waits until this one ends
LIVE = frozenset(TaskStatus) - TERMINAL


class Side(StrEnum):
    SENDER = "sender"  # staff of the referring organization
    RECEIVER = "receiver"  # staff of the organization the case is routed to


class RejectReason(StrEnum):
    NO_CAPACITY = "no_capacity"
    NOT_INDICATED = "not_indicated"  # the referral is not clinically indicated here
    MISSING_INFORMATION = "missing_information"
    WRONG_SPECIALTY = "wrong_specialty"
    PATIENT_DECLINED = "patient_declined"
    OTHER = "other"


@dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[TaskStatus]
    target: TaskStatus | None  # None: the status stays (a note, a new booking ask)
    side: Side
    business: BusinessStatus | None = None


def _t(
    name: str,
    sources: set[TaskStatus],
    target: TaskStatus | None,
    side: Side,
    business: BusinessStatus | None = None,
) -> Transition:
    return Transition(name, frozenset(sources), target, side, business)


S = TaskStatus
TRANSITIONS: dict[str, Transition] = {
    t.name: t
    for t in (
        _t("submit", {S.DRAFT}, S.REQUESTED, Side.SENDER, BusinessStatus.AWAITING_TRIAGE),
        _t("accept", {S.REQUESTED}, S.ACCEPTED, Side.RECEIVER, BusinessStatus.AWAITING_BOOKING),
        # a rejection moves the case on to the next candidate, or ends it (``rejected``)
        _t("reject", {S.REQUESTED}, None, Side.RECEIVER),
        _t("request_booking", {S.ACCEPTED}, S.ACCEPTED, Side.RECEIVER),
        _t("add_note", {S.ACCEPTED, S.IN_PROGRESS}, None, Side.RECEIVER),
        # from accepted only without a visit to wait for (see check_completable)
        _t(
            "complete",
            {S.ACCEPTED, S.IN_PROGRESS},
            S.COMPLETED,
            Side.RECEIVER,
            BusinessStatus.SUMMARY_SENT,
        ),
        _t(
            "cancel",
            {S.DRAFT, S.REQUESTED, S.ACCEPTED, S.IN_PROGRESS, S.ON_HOLD},
            S.CANCELLED,
            Side.SENDER,
            BusinessStatus.CANCELLED,
        ),
        _t("hold", {S.REQUESTED, S.ACCEPTED}, S.ON_HOLD, Side.RECEIVER, BusinessStatus.ON_HOLD),
        _t("resume", {S.ON_HOLD}, None, Side.RECEIVER),
        _t(
            "mark_entered_in_error",
            set(LIVE),
            S.ENTERED_IN_ERROR,
            Side.SENDER,
            BusinessStatus.ENTERED_IN_ERROR,
        ),
        _t("override_route", {S.REQUESTED}, S.REQUESTED, Side.SENDER),
    )
}


def transition(name: str) -> Transition:
    return TRANSITIONS[name]


def check_from(t: Transition, status: str) -> None:
    """409 ``invalid_transition`` unless ``t`` may start from ``status``."""
    if TaskStatus(status) not in t.sources:
        allowed = sorted(s.value for s in t.sources)
        raise Conflict(
            "invalid_transition",
            f"a referral that is {status} cannot be given '{t.name}' (allowed from: "
            f"{', '.join(allowed)})",
            detail_zh=f"转诊单当前状态为 {status}，不能执行该操作",
            extra={"current_status": status, "command": t.name, "allowed_from": allowed},
        )


def check_side(t: Transition, sides: set[Side]) -> None:
    """403 ``forbidden_side``: only the receiver accepts, rejects or books; only the sender
    cancels."""
    if t.side not in sides:
        who = "receiving" if t.side is Side.RECEIVER else "referring"
        raise Forbidden(
            "forbidden_side",
            f"only the {who} organization's staff may '{t.name}' this referral",
            detail_zh="仅转入机构可执行此操作"
            if t.side is Side.RECEIVER
            else "仅转出机构可执行此操作",
            extra={"command": t.name, "side": t.side.value},
        )


def check_completable(status: str, booking_status: str | None) -> None:
    """The loop closes after the visit: a case whose visit is asked for or booked is
    completed once it is in progress (booked, arrived); one with no visit (a downward
    referral into follow-up) may be completed from accepted."""
    if status == TaskStatus.ACCEPTED and booking_status in ("requested", "booked"):
        raise Conflict(
            "visit_pending",
            "the referral's visit is being booked; complete it after the visit",
            detail_zh="转诊预约尚未完成，请就诊后再完成转诊",
        )


def version_matches(if_match: str, version: int) -> bool:
    """Concurrent changes name the version they read: ``If-Match: "<n>"`` (the ETag)."""
    return if_match.strip().removeprefix("W/").strip('"') == str(version)


def require_text(value: str | None, field: str, command: str) -> str:
    if value is None or not value.strip():
        raise Invalid(
            f"{field}_required",
            f"'{command}' needs a {field.replace('_', ' ')}",
            detail_zh="缺少必填项",
            extra={"field": field, "command": command},
        )
    return value.strip()
