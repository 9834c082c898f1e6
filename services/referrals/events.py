"""Events the referrals service publishes on ``careloop.referrals`` (docs/adr/0006-referrals.md).

Every event carries the case's facts (:class:`ReferralFacts`) so a consumer acts without
calling back. The patient is named by id only: national IDs and phone numbers never travel.

Two events ask appointments for a visit (the saga, docs/adr/0006-referrals.md):
``referral.accepted`` (the first booking) and ``referral.booking_requested`` (another date
or department after a rejected booking). Both carry a :class:`BookingAsk`;
``booking_request_id`` is unique per ask, so appointments books each ask at most once and
its reply (``appointment.booked`` / ``appointment.booking.rejected``) names it back.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel

from shared.events import EventPayload, event_type


class ReferralFacts(EventPayload):
    referral_id: str
    patient_id: str
    direction: str  # upward / downward / lateral
    urgency: str  # routine / urgent / emergency
    status: str  # the FHIR Task status after the change
    business_status: str
    sending_org_id: str
    sending_department_id: str | None = None
    sending_doctor_id: str | None = None
    receiving_org_id: str | None = None
    receiving_department_id: str | None = None
    specialty: str
    diagnosis_code: str
    case_version: int  # the case's version after the change (If-Match)


class BookingAsk(BaseModel):
    booking_request_id: str
    org_id: str
    department_id: str
    preferred_date: date | None = None  # None: the first date with a free referral number
    earliest_date: date | None = None


@event_type("referral.submitted")
class ReferralSubmitted(ReferralFacts):
    pass


@event_type("referral.routed")
class ReferralRouted(ReferralFacts):
    """Sent to a receiving organization (by the router, or by a coordinator's override)."""

    routed_by: str  # "router" or "override"
    reason: str | None = None
    acceptance_due_at: datetime


@event_type("referral.accepted")
class ReferralAccepted(ReferralFacts):
    booking: BookingAsk | None = None  # None: no visit asked (a downward one, into follow-up)


@event_type("referral.booking_requested")
class ReferralBookingRequested(ReferralFacts):
    booking: BookingAsk


@event_type("referral.rejected")
class ReferralRejected(ReferralFacts):
    """One receiver declined; the case is re-routed (``rerouted``) or waits for a coordinator."""

    rejected_org_id: str
    reason_code: str
    reason: str | None = None
    rerouted: bool


@event_type("referral.escalated")
class ReferralEscalated(ReferralFacts):
    """The acceptance deadline passed: the receiving coordinator is told (once)."""

    escalated_org_id: str
    deadline: datetime


@event_type("referral.scheduled")
class ReferralScheduled(ReferralFacts):
    appointment_id: str
    starts_at: datetime


@event_type("referral.note_added")
class ReferralNoteAdded(ReferralFacts):
    note_id: str
    author_org_id: str


@event_type("referral.completed")
class ReferralCompleted(ReferralFacts):
    """The loop is closed. A downward one starts a follow-up plan at the receiving center:
    the summary and the follow-up advice travel with it."""

    diagnosis: str
    treatment: str
    recommendations: str
    follow_up_advice: str
    completed_at: datetime


@event_type("referral.cancelled")
class ReferralCancelled(ReferralFacts):
    """The sender withdrew the case; appointments cancels its booking, if any."""

    reason: str
    appointment_id: str | None = None


class TransportFacts(EventPayload):
    """A patient transport (``transports.py``, ``domain/transport.py``): where it stands
    after the change. ``inter_facility``: an ambulance transfer between organizations."""

    transport_id: str
    patient_id: str
    org_id: str  # the organization where it happens (its porters or crews do it)
    state: str
    priority: str
    mode: str
    porter_id: str | None = None
    from_org_id: str
    to_org_id: str
    inter_facility: bool
    referral_id: str | None = None
    appointment_id: str | None = None
    pickup_due_at: datetime
    transport_version: int


@event_type("transport.requested")
class TransportRequested(TransportFacts):
    requested_by_role: str


@event_type("transport.assigned")
class TransportAssigned(TransportFacts):
    """A porter got the job (pushed to the porter's app: message kind ``transport.assigned``)."""

    porter_id: str
    assigned_by: str  # "dispatch" or "override"
    reason: str | None = None


@event_type("transport.step_recorded")
class TransportStepRecorded(TransportFacts):
    step: str
    at: datetime
    by_dispatcher: bool = False


@event_type("transport.completed")
class TransportCompleted(TransportFacts):
    completed_at: datetime


@event_type("transport.cancelled")
class TransportCancelled(TransportFacts):
    reason: str


@event_type("transport.failed")
class TransportFailed(TransportFacts):
    reason: str


@event_type("transport.escalated")
class TransportEscalated(TransportFacts):
    """A deadline passed (``response``: no porter accepted; ``pickup``: nobody has the
    patient yet): the organization's dispatcher is told, once per deadline."""

    deadline_kind: str
    deadline: datetime
