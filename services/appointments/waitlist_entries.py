"""Waitlist entries: their states, requests, job keys, refusals and how patients see them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from services.appointments.domain.models import Channel, SlotStatus
from shared.mongo import Document
from shared.problems import Conflict, NotFound

OFFER_EXPIRED_JOB = "waitlist.offer_expired"
CLOSE_JOB = "waitlist.close"
MAX_CANDIDATES = 50  # entries passed over per offer (booked meanwhile) before giving up


class EntryStatus(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"  # a slot is held for the entry until offer_expires_at
    BOOKED = "booked"
    EXPIRED = "expired"  # the offer was not confirmed in time
    LEFT = "left"
    CLOSED = "closed"  # the queue closed the evening before (or the session was cancelled)


WAITING, OFFERED = EntryStatus.WAITING.value, EntryStatus.OFFERED.value
ACTIVE = [WAITING, OFFERED]
OPEN, HELD = SlotStatus.OPEN.value, SlotStatus.HELD.value
COPIED = ("org_id", "department_id", "resource_id", "resource_name", "clinic_date", "session")


class JoinRequest(BaseModel):
    patient_id: str = Field(min_length=1, max_length=64)
    schedule_id: str = Field(min_length=1, max_length=200)
    channel: Channel | None = None
    # the staff access reason: set by the route from shared.access_reason (query `reason` or
    # X-Access-Reason), never read from the body, so not in the request schema
    reason: SkipJsonSchema[str | None] = Field(None, max_length=200)


def offer_job_key(entry_id: str) -> str:
    return f"waitlist-offer:{entry_id}"


def close_job_key(schedule_id: str) -> str:
    return f"waitlist-close:{schedule_id}"


def to_ms(moment: datetime) -> datetime:
    """Cut to milliseconds, as BSON stores it: answers match what is read back later."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def becomes(status: EntryStatus, **fields: Any) -> Document:
    """The update that moves an entry to ``status`` (off the queue unless still active)."""
    active = status.value in ACTIVE
    return {"$set": {"status": status.value, "active": active, **fields}, "$inc": {"version": 1}}


def entry_not_found() -> NotFound:
    return NotFound(
        "waitlist_entry_not_found", "no such waitlist entry", detail_zh="候补记录不存在"
    )


def inactive(entry: Document) -> Conflict:
    return Conflict(
        "waitlist_entry_inactive",
        f"the waitlist entry is {entry['status']}",
        detail_zh="该候补已结束",
        extra={"current_status": entry["status"], "appointment_id": entry.get("appointment_id")},
    )


def not_confirmable(entry: Document, now: datetime) -> Conflict:
    """Why an entry holds no open offer to confirm."""
    status = entry["status"]
    if status == EntryStatus.EXPIRED or (status == OFFERED and entry["offer_expires_at"] <= now):
        return Conflict("offer_expired", "the offer has expired", detail_zh="候补号源确认已超时")
    if status == WAITING:
        return Conflict("no_offer", "no slot offered yet", detail_zh="暂未获得候补号源，请耐心等待")
    return inactive(entry)


def already_waiting(entry: Document | None) -> Conflict:
    return Conflict(
        "already_waiting",
        "already on the waitlist of this session",
        detail_zh="您已在该时段的候补队列中",
        extra={"entry_id": entry["_id"] if entry else None},
    )


def check_published(schedule: Document) -> None:
    if schedule["status"] != "published":
        raise Conflict("schedule_cancelled", "the session is cancelled", detail_zh="本次出诊已停诊")


def entry_view(entry: Document, position: int | None, timezone: str) -> dict[str, Any]:
    """An entry as its patient sees it; ``slot`` is the held slot of an open offer."""
    offer, slot = entry.get("offer"), None
    if offer is not None and entry["status"] == OFFERED:
        starts = offer["starts_at"]
        slot = {
            "id": offer["slot_id"],
            "number": offer["number"],
            "starts_at": starts.isoformat(),
            "starts_local": starts.astimezone(ZoneInfo(timezone)).isoformat(),
        }
    expires = entry.get("offer_expires_at")
    return {
        "id": entry["_id"],
        **{k: entry[k] for k in ("patient_id", "schedule_id", "department_name", *COPIED)},
        **{k: entry[k] for k in ("channel", "status")},
        "position": position,
        "joined_at": entry["joined_at"].isoformat(),
        "closes_at": entry["closes_at"].isoformat(),
        "offer_expires_at": expires.isoformat() if expires else None,
        "slot": slot,
        "appointment_id": entry.get("appointment_id"),
    }
