"""One change of a transport, written the one way every change is written, and its views.

A change is a compare-and-set on the transport's ``version`` (two concurrent changes never
both apply: the second gets 409 ``version_conflict``), a history entry (who, when, what,
why), the step's time stamp and the event, in the caller's transaction (the outbox commits
the event with the state).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument

from services.referrals.case_changes import actor
from services.referrals.store import TRANSPORTS
from shared.domain_errors import Conflict, NotFound
from shared.events import EventPayload, make_event
from shared.mongo import Database, Document
from shared.outbox import Tx
from shared.principal import Principal, Role
from shared.scoping import sees_every_org


def not_found() -> NotFound:
    return NotFound("transport_not_found", "no such transport", detail_zh="转运单不存在")


def parties(doc: Document) -> set[str]:
    """The organizations a transport concerns: where it happens, where from, where to."""
    return {doc["org_id"], doc["from"]["org_id"], doc["to"]["org_id"]}


def may_see(principal: Principal, doc: Document) -> bool:
    """Staff of an organization the transport concerns; alliance admins and services."""
    if sees_every_org(principal):
        return True
    return principal.is_staff and principal.org_id is not None and principal.org_id in parties(doc)


def is_dispatcher(principal: Principal, doc: Document) -> bool:
    """The dispatcher: a coordinator of the organization where it happens, or the HIS."""
    if Role.SERVICE in principal.roles:
        return True
    return Role.COORDINATOR in principal.roles and principal.org_id == doc["org_id"]


def facts(doc: Document) -> dict[str, Any]:
    """The :class:`~services.referrals.events.TransportFacts` of a transport."""
    return {
        "transport_id": doc["_id"],
        "patient_id": doc["patient_id"],
        "org_id": doc["org_id"],
        "state": doc["state"],
        "priority": doc["priority"],
        "mode": doc["mode"],
        "porter_id": doc.get("porter_id"),
        "from_org_id": doc["from"]["org_id"],
        "to_org_id": doc["to"]["org_id"],
        "inter_facility": doc["from"]["org_id"] != doc["to"]["org_id"],
        "referral_id": doc.get("referral_id"),
        "appointment_id": doc.get("appointment_id"),
        "pickup_due_at": doc["pickup_due_at"],
        "transport_version": doc["version"],
    }


async def save_transport(
    db: Database,
    tx: Tx,
    doc: Document,
    principal: Principal | None,
    action: str,
    *,
    state: str | None = None,
    fields: dict[str, Any] | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    event: type[EventPayload] | None = None,
    event_fields: dict[str, Any] | None = None,
) -> Document:
    """Apply one change to ``doc`` (as read) in ``tx``; the changed document."""
    now = datetime.now(UTC)
    target = state or doc["state"]
    changes: dict[str, Any] = {**(fields or {}), "state": target, "updated_at": now}
    if target != doc["state"]:
        changes[f"times.{target}"] = now
    entry = {
        "at": now,
        "by": actor(principal),
        "action": action,
        "from_state": doc["state"],
        "to_state": target,
        "reason": reason,
        "details": details or {},
    }
    after: Document | None = await db[TRANSPORTS].find_one_and_update(
        {"_id": doc["_id"], "version": doc["version"]},
        {"$set": changes, "$inc": {"version": 1}, "$push": {"history": entry}},
        return_document=ReturnDocument.AFTER,
        session=tx.session,
    )
    if after is None:
        raise Conflict(
            "version_conflict",
            "the transport changed meanwhile; read it again",
            detail_zh="转运单已被修改，请刷新后重试",
        )
    if event is not None:
        payload = event(**{**facts(after), **(event_fields or {})})
        tx.emit(make_event(payload, source="referrals", subject=after["patient_id"]))
    return after


def _times(doc: Document) -> dict[str, Any]:
    return {k: v for k, v in (doc.get("times") or {}).items() if v is not None}


def staff_view(doc: Document) -> dict[str, Any]:
    return {
        "transport_id": doc["_id"],
        "patient_id": doc["patient_id"],
        "org_id": doc["org_id"],
        "state": doc["state"],
        "priority": doc["priority"],
        "mode": doc["mode"],
        "needs": doc["needs"],
        "from": doc["from"],
        "to": doc["to"],
        "pickup_at": doc.get("pickup_at"),
        "appointment_id": doc.get("appointment_id"),
        "appointment_starts_at": doc.get("appointment_starts_at"),
        "referral_id": doc.get("referral_id"),
        "porter_id": doc.get("porter_id"),
        "response_due_at": doc["response_due_at"],
        "pickup_due_at": doc["pickup_due_at"],
        "escalated": doc.get("escalated", {}),
        "times": _times(doc),
        "reason": doc.get("reason"),
        "note": doc.get("note"),
        "history": doc.get("history", []),
        "version": doc["version"],
        "requested_at": doc["requested_at"],
    }


def patient_view(doc: Document) -> dict[str, Any]:
    """What the patient's own account sees: where the transport stands, nothing more."""
    return {
        "transport_id": doc["_id"],
        "state": doc["state"],
        "mode": doc["mode"],
        "pickup_at": doc.get("pickup_at"),
        "times": _times(doc),
    }
