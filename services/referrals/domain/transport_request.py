"""What a transport request says (the body of ``POST /v1/referrals/transports``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.referrals.domain.transport import Mode, Need, Priority, Step

ID = r"^[A-Za-z0-9._:-]{1,64}$"


class Place(BaseModel):
    """Where from or to: a ward and bed, an exam room or theatre, a department, or another
    organization (an inter-facility transfer). ``org_id`` defaults to the transport's."""

    model_config = ConfigDict(extra="forbid")
    org_id: str | None = Field(None, pattern=ID)
    department_id: str | None = Field(None, max_length=64)
    ward: str | None = Field(None, max_length=60)
    bed: str | None = Field(None, max_length=20)
    room: str | None = Field(None, max_length=60, description="exam room or theatre")
    zone: str | None = Field(None, max_length=40, description="the porters' zone (dispatch)")


class TransportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patient_id: str = Field(pattern=r"^[A-Za-z0-9-]{1,64}$")
    org_id: str | None = Field(
        None, pattern=ID, description="where it happens (the HIS names it; staff: their own)"
    )
    from_: Place = Field(alias="from")
    to: Place
    mode: Mode
    needs: list[Need] = Field(default_factory=list, max_length=4)
    priority: Priority = Priority.ROUTINE
    pickup_at: AwareDatetime | None = Field(None, description="a set time; none: now")
    appointment_id: str | None = Field(None, pattern=r"^[A-Za-z0-9-]{1,64}$")
    appointment_starts_at: AwareDatetime | None = Field(
        None, description="the exam's start: pickup is the lead time before it by default"
    )
    referral_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9-]{1,64}$",
        description="the referral that links the organizations (inter-facility transfers)",
    )
    note: str | None = Field(None, max_length=500)


class StepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    step: Step
    reason: str | None = Field(None, max_length=500)


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=500)


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    porter_id: str = Field(pattern=ID)
    reason: str | None = Field(None, max_length=500)


class DutyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    on_duty: bool
    zone: str | None = Field(None, max_length=40)


def pickup_time(
    pickup_at: datetime | None, appointment_starts_at: datetime | None, lead_minutes: float
) -> datetime | None:
    """A set pickup time wins; else the lead time before the exam; else now (None)."""
    if pickup_at is not None or appointment_starts_at is None:
        return pickup_at
    return appointment_starts_at - timedelta(minutes=lead_minutes)
