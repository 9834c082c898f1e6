"""What an appointment looks like to API callers and in events."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.mongo import Document

FACT_FIELDS = (
    "patient_id",
    "account_id",
    "org_id",
    "department_id",
    "department_name",
    "resource_id",
    "resource_name",
    "resource_kind",
    "clinic_date",
    "session",
    "number",
    "starts_at",
    "ends_at",
    "channel",
    "referral_id",
    "preparation",
)


def appointment_facts(doc: Document) -> dict[str, Any]:
    facts = {field: doc.get(field) for field in FACT_FIELDS}
    facts["appointment_id"] = doc["_id"]
    return facts


def appointment_view(doc: Document, timezone: str) -> dict[str, Any]:
    zone = ZoneInfo(timezone)
    return {
        "id": doc["_id"],
        "status": doc["status"],
        "patient_id": doc["patient_id"],
        "org_id": doc["org_id"],
        "department_id": doc["department_id"],
        "department_name": doc["department_name"],
        "resource_id": doc["resource_id"],
        "resource_name": doc["resource_name"],
        "resource_kind": doc["resource_kind"],
        "title": doc.get("title"),
        "schedule_id": doc["schedule_id"],
        "slot_id": doc["slot_id"],
        "clinic_date": doc["clinic_date"],
        "session": doc["session"],
        "number": doc["number"],
        "starts_at": doc["starts_at"].isoformat(),
        "ends_at": doc["ends_at"].isoformat(),
        "starts_local": doc["starts_at"].astimezone(zone).isoformat(),
        "ends_local": doc["ends_at"].astimezone(zone).isoformat(),
        "channel": doc["channel"],
        "pool": doc["pool"],
        "fee_cents": doc.get("fee_cents", 0),
        "preparation": doc.get("preparation"),
        "queue_number": doc.get("queue_number"),
        "referral_id": doc.get("referral_id"),
        "version": doc.get("version", 1),
        "booked_by_role": doc.get("booked_by", {}).get("role"),
        "checked_in_at": _iso(doc.get("checked_in_at")),
        "rescheduled_from": doc.get("rescheduled_from"),
        "rescheduled_to": doc.get("rescheduled_to"),
        "extra": bool(doc.get("extra", False)),
        "waitlist_id": doc.get("waitlist_id"),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def slot_view(doc: Document) -> dict[str, Any]:
    """A numbered slot as the catalog shows it."""
    return {
        "id": doc["_id"],
        "number": doc["number"],
        "starts_at": doc["starts_at"].isoformat(),
        "ends_at": doc["ends_at"].isoformat(),
        "pool": doc["pool"],
        "available": doc["status"] == "open",
    }
