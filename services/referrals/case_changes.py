"""One change of a referral case, written the one way every change is written.

A change is a compare-and-set on the case's ``version`` (so two concurrent changes never
both apply: the second gets 409 ``version_conflict``), a history entry (who, when, what,
why), the staff notices it makes (``notices.py``), and the event that tells the other
services, all in the caller's transaction (the outbox commits the event with the state,
docs/architecture.md §6).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument

from services.referrals.domain.workflow import LIVE, TaskStatus
from services.referrals.notices import write_notices
from services.referrals.store import CASES
from shared.domain_errors import Conflict
from shared.events import EventPayload, make_event
from shared.mongo import Database, Document
from shared.outbox import Tx
from shared.principal import Principal

SYSTEM = {"id": "referrals", "role": "system", "org_id": None}


def actor(principal: Principal | None) -> dict[str, Any]:
    if principal is None:
        return dict(SYSTEM)
    return {"id": principal.subject, "role": principal.primary_role, "org_id": principal.org_id}


def facts(doc: Document) -> dict[str, Any]:
    """The :class:`~services.referrals.events.ReferralFacts` of a case."""
    return {
        "referral_id": doc["_id"],
        "patient_id": doc["patient_id"],
        "direction": doc["direction"],
        "urgency": doc["urgency"],
        "status": doc["status"],
        "business_status": doc["business_status"],
        "sending_org_id": doc["sending_org_id"],
        "sending_department_id": doc.get("sending_department_id"),
        "sending_doctor_id": doc.get("sending_doctor_id"),
        "receiving_org_id": doc.get("receiving_org_id"),
        "receiving_department_id": doc.get("receiving_department_id"),
        "specialty": doc["specialty"],
        "diagnosis_code": doc["diagnosis"]["code"],
        "case_version": doc["version"],
    }


def history_entry(
    principal: Principal | None,
    action: str,
    before: Document,
    *,
    status: str,
    business_status: str,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    return {
        "at": now or datetime.now(UTC),
        "by": actor(principal),
        "action": action,
        "from_status": before["status"],
        "to_status": status,
        "business_status": business_status,
        "reason": reason,
        "details": details or {},
    }


async def save_change(
    db: Database,
    tx: Tx,
    before: Document,
    principal: Principal | None,
    action: str,
    *,
    status: str | None = None,
    business_status: str | None = None,
    fields: dict[str, Any] | None = None,
    push: dict[str, Any] | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    event: type[EventPayload] | None = None,
    event_fields: dict[str, Any] | None = None,
) -> Document:
    """Apply one change to ``before`` (as read at its version) and emit ``event``.

    409 ``version_conflict`` when the case changed since ``before`` was read.
    """
    now = datetime.now(UTC)
    status = status or before["status"]
    business_status = business_status or before["business_status"]
    entry = history_entry(
        principal,
        action,
        before,
        status=status,
        business_status=business_status,
        reason=reason,
        details=details,
        now=now,
    )
    update: dict[str, Any] = {
        "$set": {
            **(fields or {}),
            "status": status,
            "business_status": business_status,
            "live": TaskStatus(status) in LIVE,
            "updated_at": now,
        },
        "$inc": {"version": 1},
        "$push": {"history": entry, **(push or {})},
    }
    after = await db[CASES].find_one_and_update(
        {"_id": before["_id"], "version": before["version"]},
        update,
        return_document=ReturnDocument.AFTER,
        session=tx.session,
    )
    if after is None:
        raise Conflict(
            "version_conflict",
            "the referral changed while this change was made; read it again",
            detail_zh="转诊单已被他人修改，请刷新后重试",
        )
    await write_notices(db, tx, action, after)
    if event is not None:
        payload = event(**facts(after), **(event_fields or {}))
        tx.emit(make_event(payload, source="referrals", subject=after["patient_id"]))
    return after
