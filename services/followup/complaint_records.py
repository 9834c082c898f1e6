"""A complaint's stored document: to and from the domain's ``ComplaintState``, the views
staff and the complainant get, and the facts its events carry.

``complaints`` documents: the state's fields (``status``, ``owner_id``, ``receiver_id``,
``patient_id``, ``complexity``, ``departments_involved``, ``received_at``, ``deadline_at``,
``escalation_level``, ``resolution``, ``callbacks``, ``satisfaction``,
``closed_unreachable``), what was raised (``category``, ``severity``, ``channel``,
``description``, ``people_involved``, ``contact_preference``, ``complainant_account_id``
for a patient account), ``history`` (who did what when) and ``version`` (the ETag).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.followup.domain.complaint import (
    Callback,
    ComplaintEvent,
    ComplaintState,
    Complexity,
    EscalationLevel,
    Status,
)
from shared.domain_errors import NotFound
from shared.mongo import Document

ESCALATE_JOB = "followup.complaint_escalate"


def escalate_job_key(complaint_id: str) -> str:
    return f"followup-complaint-escalate:{complaint_id}"


def complaint_not_found(complaint_id: str) -> NotFound:
    return NotFound("complaint_not_found", f"no complaint {complaint_id!r}", detail_zh="投诉不存在")


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def state_of(doc: Document) -> ComplaintState:
    """The domain's state of a stored complaint."""
    return ComplaintState(
        org_id=doc["org_id"],
        status=Status(doc["status"]),
        owner_id=doc["owner_id"],
        receiver_id=doc["receiver_id"],
        complainant_patient_id=doc.get("patient_id"),
        complexity=Complexity(doc["complexity"]),
        departments_involved=tuple(doc.get("departments_involved", ())),
        received_at=_aware(doc["received_at"]),
        deadline=_aware(doc["deadline_at"]),
        escalation_level=EscalationLevel(doc.get("escalation_level", 0)),
        resolution=doc.get("resolution"),
        callbacks=tuple(
            Callback(_aware(c["at"]), c["by"], c["reached"], c.get("note"))
            for c in doc.get("callbacks", ())
        ),
        satisfaction=doc.get("satisfaction"),
        closed_unreachable=bool(doc.get("closed_unreachable", False)),
    )


def state_fields(state: ComplaintState) -> dict[str, Any]:
    """The document's fields that hold ``state``."""
    return {
        "org_id": state.org_id,
        "status": state.status.value,
        "owner_id": state.owner_id,
        "receiver_id": state.receiver_id,
        "patient_id": state.complainant_patient_id,
        "complexity": state.complexity.value,
        "departments_involved": list(state.departments_involved),
        "received_at": state.received_at,
        "deadline_at": state.deadline,
        "escalation_level": int(state.escalation_level),
        "resolution": state.resolution,
        "callbacks": [
            {"at": c.at, "by": c.by, "reached": c.reached, "note": c.note} for c in state.callbacks
        ],
        "satisfaction": state.satisfaction,
        "closed_unreachable": state.closed_unreachable,
    }


def history_entry(event: ComplaintEvent) -> dict[str, Any]:
    return {
        "type": event.type,
        "actor_id": event.actor_id,
        "at": event.at,
        "data": dict(event.data),
    }


def facts(doc: Document) -> dict[str, Any]:
    """What every complaint event says of the complaint (ids and codes, no free text)."""
    return {
        "complaint_id": doc["_id"],
        "patient_id": doc.get("patient_id"),
        "org_id": doc["org_id"],
        "category": doc["category"],
        "severity": doc["severity"],
        "status": doc["status"],
        "owner_id": doc["owner_id"],
        "deadline_at": doc["deadline_at"],
        "complexity": doc["complexity"],
        "escalation_level": doc.get("escalation_level", 0),
    }


PATIENT_KEYS = (
    "org_id",
    "patient_id",
    "category",
    "severity",
    "channel",
    "description",
    "contact_preference",
    "status",
    "received_at",
    "deadline_at",
    "resolution",
    "satisfaction",
    "version",
)
STAFF_KEYS = (
    *PATIENT_KEYS,
    "owner_id",
    "receiver_id",
    "complexity",
    "departments_involved",
    "people_involved",
    "escalation_level",
    "callbacks",
    "closed_unreachable",
    "complainant_account_id",
    "updated_at",
)


def staff_view(doc: Document, *, with_history: bool = True) -> dict[str, Any]:
    view = {"complaint_id": doc["_id"], **{k: doc.get(k) for k in STAFF_KEYS}}
    view["overdue"] = is_overdue(doc)
    if with_history:
        view["history"] = doc.get("history", [])
    return view


def patient_view(doc: Document) -> dict[str, Any]:
    """What the complainant's account sees: no owner, no internal history."""
    return {"complaint_id": doc["_id"], **{k: doc.get(k) for k in PATIENT_KEYS}}


def is_overdue(doc: Document, now: datetime | None = None) -> bool:
    if doc["status"] not in (Status.RECEIVED, Status.IN_PROGRESS):
        return False
    return _aware(doc["deadline_at"]) < (now or datetime.now(UTC))
