"""Bed offers' states, the assign request, job keys and refusals (``bed_offers.py``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from shared.mongo import Document
from shared.problems import Conflict, NotFound

OFFER_EXPIRED_JOB = "bed_offer.expired"
MAX_CONFIRM_WINDOW = timedelta(hours=48)


class OfferStatus(StrEnum):
    OFFERED = "offered"
    CONFIRMED = "confirmed"
    DECLINED = "declined"
    EXPIRED = "expired"
    ADMITTED = "admitted"


class AssignIn(BaseModel):
    bed_id: str = Field(min_length=1, max_length=64)
    come_at: AwareDatetime
    what_to_bring: str = Field(min_length=1, max_length=500)
    # when the patient must confirm by; default: the org's bed policy (offer_minutes)
    confirm_by: AwareDatetime | None = None


def offer_job_key(offer_id: str) -> str:
    return f"bed-offer:{offer_id}"


def to_ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def offer_not_found() -> NotFound:
    return NotFound("bed_offer_not_found", "no such bed offer", detail_zh="床位通知不存在")


def not_waiting(notice: Document) -> Conflict:
    return Conflict(
        "notice_not_waiting",
        f"the admission notice is {notice['status']}",
        detail_zh="该住院证当前不在等床状态",
        extra={"current_status": notice["status"]},
    )


def not_open(offer: Document, now: datetime) -> Conflict:
    if offer["status"] == OfferStatus.EXPIRED or (
        offer["status"] == OfferStatus.OFFERED and offer["expires_at"] <= now
    ):
        return Conflict("offer_expired", "the bed offer has expired", detail_zh="床位确认已超时")
    return Conflict(
        "bed_offer_closed",
        f"the bed offer is {offer['status']}",
        detail_zh="该床位通知已处理",
        extra={"current_status": offer["status"]},
    )


def facts(offer: Document) -> dict[str, Any]:
    return {
        "offer_id": offer["_id"],
        **{k: offer[k] for k in ("notice_id", "patient_id", "account_id", "org_id", "bed_id")},
        **{k: offer[k] for k in ("ward_id", "come_at", "what_to_bring", "borrowed")},
        "department": offer["department_name"],
        "ward": offer["ward_name"],
        "bed": offer["bed_label"],
        "offer_expires_at": offer["expires_at"],
    }
