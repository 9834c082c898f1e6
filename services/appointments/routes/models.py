"""Response models of the appointments routes (the JSON is the views' dicts, unchanged)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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


class SavedIds(BaseModel):
    """The ids of the departments or resources a bulk upsert saved, in the order given."""

    ids: list[str]


class PublishedSchedule(BaseModel):
    """One schedule of a bulk publish: ``status`` ``published`` (with ``pools``),
    ``grown`` (with ``added`` and ``pools``) or ``unchanged``."""

    model_config = ConfigDict(extra="allow")

    schedule_id: str
    status: str


class PublishedSchedules(BaseModel):
    schedules: list[PublishedSchedule]


class OffenceCount(BaseModel):
    """Offences of one kind in the current window, and the rule that bans."""

    model_config = ConfigDict(extra="allow")

    count: int
    window_days: int
    threshold: int
    ban_days: int


class DecidedBy(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    role: str


class AppealView(BaseModel):
    """An appeal against a booking ban (``penalties.appeal_view``)."""

    model_config = ConfigDict(extra="allow")

    id: str
    patient_id: str | None
    org_id: str | None
    status: str | None
    reason: str | None
    at: datetime | None
    banned_until: datetime | None
    decided_at: datetime | None
    decided_by: DecidedBy | None
    note: str | None


class BookingSummary(BaseModel):
    """A patient's offences and ban at one organization (``org_id`` null: at none)."""

    model_config = ConfigDict(extra="allow")

    patient_id: str
    org_id: str | None
    no_shows: OffenceCount
    late_cancels: OffenceCount
    banned: bool
    banned_until: datetime | None
    cleared_at: datetime | None


class OrgBookingStatus(BookingSummary):
    appeal: AppealView | None


class BookingStatus(OrgBookingStatus):
    """The status at the organization that matters most, and at each one."""

    organizations: list[OrgBookingStatus]


class OverrideResult(BookingSummary):
    """The summary once the ban is lifted, with the id of the override's record."""

    override_id: str


class StaffAppealView(AppealView):
    """An appeal in the staff's queue, with the patient's masked name and offences."""

    patient_name: str | None
    offences: dict[str, OffenceCount]  # ``no_shows``, ``late_cancels``; empty if not recorded


class AppealPage(BaseModel):
    items: list[StaffAppealView]
    next_cursor: str | None  # pass back as ``cursor``; null on the last page


class CancelledSession(BaseModel):
    """A cancelled session (停诊): bookings cancelled, offers made, alternative sessions."""

    model_config = ConfigDict(extra="allow")

    schedule_id: str
    status: str
    cancelled_appointments: int
    rebooking_offers: int
    alternatives: list[str]


class CancelledBooking(BaseModel):
    """What the cancelled booking was: who, when, which number."""

    model_config = ConfigDict(extra="allow")

    resource_name: str
    clinic_date: str
    session: str
    number: int
    starts_at: datetime


class Alternative(BaseModel):
    """A session an offer can be taken in, until ``valid_until``."""

    model_config = ConfigDict(extra="allow")

    schedule_id: str
    resource_id: str | None
    resource_name: str | None
    clinic_type: str | None
    clinic_date: str | None
    session: str | None
    starts_at: datetime
    starts_local: str
    valid_until: datetime
    remaining: int


class RebookingOfferView(BaseModel):
    """A priority rebooking offer (``clinic.offer_view``); ``alternatives`` only while open."""

    model_config = ConfigDict(extra="allow")

    id: str
    status: str
    patient_id: str
    reason: str
    department_id: str
    department_name: str
    cancelled: CancelledBooking
    cancelled_schedule_id: str
    cancelled_appointment_id: str
    created_at: datetime
    expires_at: datetime
    alternatives: list[Alternative]
    appointment_id: str | None


class RebookingOffers(BaseModel):
    items: list[RebookingOfferView]


class DepartmentView(BaseModel):
    """A department (``catalog.public_view``). The keys keep the stored document's order,
    which MongoDB's ``$set`` makes alphabetical, then ``id``."""

    model_config = ConfigDict(extra="allow")

    code: str
    kind: str
    name: str
    org_id: str
    id: str


class ResourceView(BaseModel):
    """A doctor or exam resource (``catalog.public_view``); keys in the stored order
    (alphabetical, from ``$set``), then ``id``."""

    model_config = ConfigDict(extra="allow")

    clinic_type: str
    code: str
    department_code: str
    department_id: str
    exam_type: str | None
    fee_category: str
    fee_cents: int
    kind: str
    name: str
    org_id: str
    preparation: str | None
    title: str | None
    id: str


class TicketLinks(BaseModel):
    poll_url: str = Field(description="GET it for the ticket's state (counts as a poll).")
    events_url: str = Field(description="The same as server-sent events (`event: ticket`).")


class QueuedTicket(TicketLinks):
    """A place in a release window's waiting room (排队)."""

    id: str
    schedule_id: str
    position: int = Field(ge=1, description="1 is next.")
    estimated_wait_seconds: int = Field(ge=0)


class QueuedBooking(BaseModel):
    """``202``: the booking waits its turn; poll the ticket (or follow its events) for the
    answer. ``Location`` names the ticket too."""

    status: Literal["queued"] = "queued"
    ticket: QueuedTicket


class TicketView(TicketLinks):
    """A waiting-room ticket. ``status``: `queued` (``position`` is its place), `serving`,
    then one answer: `booked` (``appointment``), `sold_out` or `failed` (``problem``, an
    RFC 9457 problem), or `expired` (not polled for a while: book again)."""

    id: str
    schedule_id: str
    status: Literal["queued", "serving", "booked", "sold_out", "failed", "expired"]
    position: int | None = None
    estimated_wait_seconds: int | None = None
    appointment: AppointmentView | None = None
    problem: dict[str, Any] | None = None
