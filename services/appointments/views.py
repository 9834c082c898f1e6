"""What an appointment looks like to API callers and in events."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.appointments.events import AppointmentFacts
from shared.mongo import Document

# one definition of an appointment's facts: AppointmentFacts, the payload its events share
FACTS = AppointmentFacts.model_fields
FACT_FIELDS = tuple(name for name in FACTS if name != "appointment_id")
HIDDEN_FACTS = frozenset({"account_id"})  # in events, not in the API view


def appointment_facts(doc: Document) -> dict[str, Any]:
    facts = {field: doc.get(field) for field in FACT_FIELDS}
    facts["appointment_id"] = doc["_id"]
    return facts


def _shown_fact(doc: Document, name: str) -> Any:
    """A fact as the API view shows it: required ones must be stored, times in ISO 8601."""
    value = doc[name] if FACTS[name].is_required() else doc.get(name)
    return value.isoformat() if isinstance(value, datetime) else value


def appointment_view(doc: Document, timezone: str) -> dict[str, Any]:
    zone = ZoneInfo(timezone)
    return {
        "id": doc["_id"],
        "status": doc["status"],
        **{name: _shown_fact(doc, name) for name in FACT_FIELDS if name not in HIDDEN_FACTS},
        "title": doc.get("title"),
        "schedule_id": doc["schedule_id"],
        "slot_id": doc["slot_id"],
        "starts_local": doc["starts_at"].astimezone(zone).isoformat(),
        "ends_local": doc["ends_at"].astimezone(zone).isoformat(),
        "pool": doc["pool"],
        "fee_cents": doc.get("fee_cents", 0),
        "queue_number": doc.get("queue_number"),
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


def session_view(doc: Document, remaining: dict[str, int]) -> dict[str, Any]:
    """A published session as the catalog shows it, with its remaining slots per pool."""
    return {
        "id": doc["_id"],
        "resource_id": doc["resource_id"],
        "resource_name": doc["resource_name"],
        "clinic_type": doc["clinic_type"],
        "department_id": doc["department_id"],
        "clinic_date": doc["clinic_date"],
        "session": doc["session"],
        "starts_at": doc["starts_at"].isoformat(),
        "ends_at": doc["ends_at"].isoformat(),
        "fee_cents": doc["fee_cents"],
        "remaining": remaining,
    }
