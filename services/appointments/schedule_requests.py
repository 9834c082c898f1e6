"""What a publish request is: a session to publish, its ids, and why a published session
refuses a re-publish. Pure input rules, no I/O (``schedules.py`` does the publishing)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field, model_validator

from services.appointments.catalog import CODE
from services.appointments.domain.models import ORG_ID, ClinicType, LocalTime, Session
from shared.mongo import Document
from shared.problems import Conflict


class ScheduleIn(BaseModel):
    org_id: str = Field(pattern=ORG_ID)
    resource_code: str = Field(pattern=CODE)
    clinic_date: date
    session: Session
    starts: LocalTime
    ends: LocalTime
    slot_count: int = Field(ge=1, le=300)
    clinic_type: ClinicType | None = None  # defaults to the doctor's

    @model_validator(mode="after")
    def _order(self) -> ScheduleIn:
        if self.ends <= self.starts:
            raise ValueError("ends must be after starts")
        return self


def resource_key(item: ScheduleIn) -> str:
    """The resource's id: a code is unique within its organization only."""
    return f"{item.org_id}.{item.resource_code}"


def schedule_id(resource_id: str, clinic_date: date, session: Session | str) -> str:
    return f"{resource_id}.{clinic_date.isoformat()}.{Session(session).value}"


def refusal(existing: Document, item: ScheduleIn) -> Conflict | None:
    """Why a published session cannot take ``item``, if it cannot."""
    sid = existing["_id"]
    times = (existing["starts_local"], existing["ends_local"])
    if times != (item.starts.isoformat(), item.ends.isoformat()):
        return Conflict(
            "schedule_times_changed",
            "a published session's times cannot change; cancel it instead",
            extra={"schedule_id": sid},
        )
    if existing["status"] != "published":
        return Conflict(
            "schedule_cancelled", "this session has been cancelled", extra={"schedule_id": sid}
        )
    if item.slot_count < existing["slot_count"]:
        return Conflict(
            "schedule_shrink_refused",
            "capacity cannot be reduced; cancel bookings or the session",
            extra={"schedule_id": sid, "slot_count": existing["slot_count"]},
        )
    return None
