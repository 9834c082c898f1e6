"""The referrals service's events that appointments acts on, read tolerantly.

Services do not import each other (docs/architecture.md §2, §5): these are the fields
appointments needs of ``referral.accepted``, ``referral.booking_requested`` and
``referral.cancelled`` (the producer's models are in the referrals service); anything
else the events carry is ignored. They are not registered as event types: appointments
does not publish them.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict

from shared.events import EventPayload

ACCEPTED = "careloop.referral.accepted"
BOOKING_REQUESTED = "careloop.referral.booking_requested"
CANCELLED = "careloop.referral.cancelled"


class BookingAsk(BaseModel):
    """One ask for a visit; ``booking_request_id`` is unique per ask."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    booking_request_id: str
    org_id: str
    department_id: str
    preferred_date: date | None = None  # None: the first date with a free referral number
    earliest_date: date | None = None


class ReferralBookingAsked(EventPayload):
    """``referral.accepted`` (the first booking) or ``referral.booking_requested``."""

    referral_id: str
    patient_id: str
    booking: BookingAsk


class ReferralBookingEvent(EventPayload):
    """The event as it comes: a ``referral.accepted`` without a visit to book (a downward
    referral into follow-up) has no ``booking``."""

    referral_id: str
    patient_id: str
    booking: BookingAsk | None = None

    def ask(self) -> ReferralBookingAsked | None:
        if self.booking is None:
            return None
        return ReferralBookingAsked(
            referral_id=self.referral_id, patient_id=self.patient_id, booking=self.booking
        )


class ReferralCancelled(EventPayload):
    """``referral.cancelled``: the sender withdrew the case."""

    referral_id: str
    patient_id: str
    reason: str = ""
    appointment_id: str | None = None
