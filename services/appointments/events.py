"""Events the appointments service publishes on ``careloop.appointments`` (docs/architecture.md §4).

Payloads carry what a consumer needs to act without calling back: the patient, where and
when, and the channel. National IDs and phone numbers never travel in events.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from shared.events import EventPayload, event_type


class AppointmentFacts(EventPayload):
    appointment_id: str
    patient_id: str
    account_id: str
    org_id: str
    department_id: str
    department_name: str
    resource_id: str
    resource_name: str
    resource_kind: str
    clinic_date: date
    session: str
    number: int
    starts_at: datetime
    ends_at: datetime
    channel: str
    referral_id: str | None = None
    preparation: str | None = None
    # the referral saga's ask this booking answers (referral.accepted / booking_requested)
    booking_request_id: str | None = None
    pool: str | None = None  # the pool its number came from: public, referral, hotline, ...
    # the follow-up revisit ask this booking answers (followup.revisit_requested)
    revisit_request_id: str | None = None


@event_type("appointment.booked")
class AppointmentBooked(AppointmentFacts):
    booked_by_role: str = "patient"
    # a staff booking of an inpatient's exam: the escort there, asked of the referrals
    # service's porters: {"mode": wheelchair|stretcher|bed|walk_with_escort, "needs": [...],
    # "from_ward": str, "from_bed": str | None}
    escort: dict[str, Any] | None = None


@event_type("appointment.cancelled")
class AppointmentCancelled(AppointmentFacts):
    reason: str
    cancelled_by_role: str
    late: bool = False
    rebooking_offer_id: str | None = None  # a cancelled session (停诊) offers priority rebooking
    rebooking_offer_expires_at: datetime | None = None


@event_type("appointment.rescheduled")
class AppointmentRescheduled(AppointmentFacts):
    previous_appointment_id: str
    previous_starts_at: datetime


@event_type("appointment.checked_in")
class AppointmentCheckedIn(AppointmentFacts):
    queue_number: int


@event_type("appointment.no_show")
class AppointmentNoShow(AppointmentFacts):
    no_shows_in_window: int
    banned_until: datetime | None = None


@event_type("appointment.waitlist.offered")
class WaitlistOffered(EventPayload):
    waitlist_id: str
    patient_id: str
    account_id: str
    schedule_id: str
    slot_id: str
    resource_name: str
    department_name: str
    clinic_date: date
    session: str
    starts_at: datetime
    offer_expires_at: datetime


@event_type("appointment.booking.rejected")
class BookingRejected(EventPayload):
    patient_id: str
    schedule_id: str | None
    code: str
    reason: str
    referral_id: str | None = None
    booking_request_id: str | None = None  # the referral saga's ask it answers
    revisit_request_id: str | None = None  # the follow-up revisit ask it answers


@event_type("appointment.schedule.published")
class SchedulePublished(EventPayload):
    schedule_id: str
    org_id: str
    department_id: str
    resource_id: str
    clinic_date: date
    session: str
    slot_count: int
    pools: dict[str, int]


@event_type("appointment.schedule.cancelled")
class ScheduleCancelled(EventPayload):
    """A doctor's session was cancelled (停诊); each booking gets its own cancelled event."""

    schedule_id: str
    org_id: str
    department_id: str
    resource_id: str
    clinic_date: date
    session: str
    reason: str
    affected_appointments: int


@event_type("patient.registered")
class PatientRegistered(EventPayload):
    """A real-name patient was added to an account (new, or linked to a further account).

    The phone number travels encrypted (AES-GCM under the alliance's PII key, context
    ``patient.phone``) for the notifications service; the national ID never travels, only
    its keyed lookup hash (the alliance's ``pii_hash_key``), by which followup matches
    discharges from the HIS to the patient (docs/adr/0007-followup.md).
    """

    patient_id: str
    account_id: str | None  # null: registered by hotline or counter staff, no account yet
    relation: str
    phone_enc: str
    phone_masked: str
    national_id_hash: str | None = None


@event_type("patient.verification_requested")
class PatientVerificationRequested(EventPayload):
    """An account asked to add a real-name patient: text this code to the phone on record.

    The phone and the code travel encrypted (contexts ``patient_verification.phone`` and
    ``patient_verification.code``); the notifications service sends the SMS at once.
    """

    verification_id: str
    account_id: str
    phone_enc: str
    phone_masked: str
    code_enc: str
    minutes: int


@event_type("patient.unlinked")
class PatientUnlinked(EventPayload):
    """An account stopped managing a patient: it must no longer reach their messages."""

    patient_id: str
    account_id: str


# --- bed arrangement (住院床位预约, services/appointments/bed_offers.py) ---------------------


@event_type("admission_notice.issued")
class AdmissionNoticeIssued(EventPayload):
    """A doctor issued an admission notice (住院证): the patient joins the bed waiting list."""

    notice_id: str
    patient_id: str
    account_id: str | None
    org_id: str
    department_id: str
    department_name: str
    urgency: str
    expected_days: int
    planned_date: date | None = None


class BedOfferFacts(EventPayload):
    offer_id: str
    notice_id: str
    patient_id: str
    account_id: str | None
    org_id: str
    department: str  # the notice's department name
    ward: str  # the ward's name
    bed: str  # room and bed code, as the patient reads it ("305-2")
    bed_id: str
    ward_id: str
    come_at: datetime
    what_to_bring: str
    offer_expires_at: datetime
    borrowed: bool = False  # a bed of another department's ward (借床)


@event_type("bed.offered")
class BedOffered(BedOfferFacts):
    """A bed is reserved for the patient: come at ``come_at`` (confirm before expiry)."""


@event_type("bed.offer_confirmed")
class BedOfferConfirmed(BedOfferFacts):
    confirmed_by_role: str = "patient"


@event_type("bed.offer_declined")
class BedOfferDeclined(BedOfferFacts):
    declined_by_role: str = "patient"
    reason: str | None = None


@event_type("bed.offer_expired")
class BedOfferExpired(BedOfferFacts):
    """Not confirmed in time: the bed went to the next candidate (or back to free)."""


@event_type("bed.status_changed")
class BedStatusChanged(EventPayload):
    bed_id: str
    ward_id: str
    org_id: str
    department_id: str
    previous_status: str
    status: str
    cause: str  # offered, offer_declined, offer_expired, admitted, discharged, cleaned, his
    patient_id: str | None = None
