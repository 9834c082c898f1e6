"""Response models of the appointments routes (the JSON is the views' dicts, unchanged)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class AppointmentView(BaseModel):
    """An appointment as callers see it (``views.appointment_view``); times in ISO 8601,
    ``starts_local`` and ``ends_local`` in the organization's time zone."""

    model_config = ConfigDict(extra="allow")

    id: str
    status: str
    patient_id: str
    org_id: str
    department_id: str
    department_name: str
    resource_id: str
    resource_name: str
    resource_kind: str
    title: str | None
    schedule_id: str
    slot_id: str
    clinic_date: str
    session: str
    number: int
    starts_at: str
    ends_at: str
    starts_local: str
    ends_local: str
    channel: str
    pool: str
    fee_cents: int
    preparation: str | None
    queue_number: int | None
    referral_id: str | None
    version: int
    booked_by_role: str | None
    checked_in_at: str | None
    rescheduled_from: str | None
    rescheduled_to: str | None
    extra: bool
    waitlist_id: str | None


class AppointmentPage(BaseModel):
    items: list[AppointmentView]
    next: str | None  # pass back as ``before`` for the next page; null on the last one


class SlotView(BaseModel):
    """A numbered slot of a session (``available``: open for booking)."""

    id: str
    number: int
    starts_at: str
    ends_at: str
    pool: str
    available: bool


class HeldSlot(BaseModel):
    """The slot held for an entry while its offer is open."""

    model_config = ConfigDict(extra="allow")

    id: str
    number: int
    starts_at: str
    starts_local: str


class WaitlistEntryView(BaseModel):
    """A waitlist entry (``waitlist_entries.entry_view``); ``position`` while waiting,
    ``slot`` and ``offer_expires_at`` while offered, ``appointment_id`` once booked."""

    model_config = ConfigDict(extra="allow")

    id: str
    patient_id: str
    schedule_id: str
    department_name: str
    org_id: str
    department_id: str
    resource_id: str
    resource_name: str
    clinic_date: str
    session: str
    channel: str
    status: str
    position: int | None
    joined_at: str
    closes_at: str
    offer_expires_at: str | None
    slot: HeldSlot | None
    appointment_id: str | None


class WaitlistEntries(BaseModel):
    items: list[WaitlistEntryView]


class SessionView(BaseModel):
    """A published session with its remaining slots per pool."""

    model_config = ConfigDict(extra="allow")

    id: str
    resource_id: str
    resource_name: str
    clinic_type: str
    department_id: str
    clinic_date: str
    session: str
    starts_at: str
    ends_at: str
    fee_cents: int
    remaining: dict[str, int]
