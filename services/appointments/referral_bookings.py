"""The appointments side of the referral saga (docs/architecture.md §4, §6).

On ``referral.accepted`` and ``referral.booking_requested`` the referral's patient is
booked into the receiving department's referral pool; on ``referral.cancelled`` that
booking is cancelled. Each handler runs inside the consumer's transaction
(``shared.consumer``), so its writes, its handled-event record and its reply commit
together.

**The booking** is a reserved-pool booking (:mod:`services.appointments.reserved_bookings`,
shared with follow-up revisits), made by the referrals service (a SERVICE principal:
``booked_by_role`` "service") on the referral channel, from the referral pool only. The
date is ``preferred_date`` when the ask names one (the first session of that date, any
doctor of the department, with a free referral number), else the first such session from
max(today, ``earliest_date``) to today + ``referral_release_days_ahead`` (the referral
horizon). A session that cannot take the patient (sold out, not open yet, already booked
with that doctor or in that department that day) passes to the next one; a refusal of
the patient (banned, a limit reached) ends the search.

**The account** the appointment belongs to is the patient's own account (the one whose
relation to the patient is "self") when one manages them, else the account that linked
the patient first, else none (""). The referrals service acts for no account, and the
booking is the patient's: it shows up in, and is announced to, the account the patient
manages themselves from, or the family member who does.

**Once per ask.** Each ask is recorded in ``referral_asks`` (``_id``: its
``booking_request_id``) with its outcome, in the transaction that books or rejects it.
A redelivered event is dropped by the consumer (handled events); another event with an
ask already answered changes and publishes nothing, since its reply is on the topic
already (a second ``appointment.booked`` would text the patient twice). The admission
is leased under ``referral:<booking_request_id>`` (see the shared module for crashes).

**One live booking per referral.** An ask while the referral has a live (booked or
checked-in) appointment is rejected with ``referral_already_booked``, not reused: a new
ask means another date or department, and the referrals service cancels the old booking
first. The check runs after the patient's booking record is locked, so no other booking
of the patient races it.

**Replies.** ``appointment.booked`` with ``referral_id``, ``booking_request_id`` and
``pool``; or ``appointment.booking.rejected`` with ``referral_id``,
``booking_request_id``, a stable ``code`` and a readable ``reason``: ``patient_not_found``,
``department_not_found``, ``referral_already_booked``, ``no_referral_slot`` (no free
referral number on that date or in the horizon), or the booking's own code
(``patient_banned``, ``active_booking_limit``, ``real_name_day_limit``,
``department_day_limit``, ``duplicate_booking``, ``slot_not_released``, ...).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

import structlog

from services.appointments.cancellation import Cancellation
from services.appointments.domain import referral_rules
from services.appointments.domain.models import AppointmentStatus
from services.appointments.policies import Policies
from services.appointments.referral_events import ReferralBookingAsked, ReferralBookingEvent
from services.appointments.referral_events import ReferralCancelled as Cancelled
from services.appointments.reserved_bookings import Refusal, ReservedAsk, ReservedBookings
from services.appointments.store import APPOINTMENTS, REFERRAL_ASKS
from shared.events import Envelope
from shared.mongo import Database
from shared.outbox import Tx
from shared.principal import Principal, Role

log = structlog.get_logger(__name__)

# who books and cancels for a referral: the referrals service
REFERRALS_SERVICE = Principal(subject="service:referrals", roles=frozenset({Role.SERVICE}))
CANCEL_REASON = "referral_cancelled"
NO_REFERRAL_SLOT = "no_referral_slot"


class ReferralBookings:
    def __init__(
        self,
        db: Database,
        reserved: ReservedBookings,
        cancellation: Cancellation,
        policies: Policies,
    ) -> None:
        self.db = db
        self.reserved = reserved
        self.cancellation = cancellation
        self.policies = policies

    # --- booking ----------------------------------------------------------------------------

    async def book(self, event: Envelope, tx: Tx) -> None:
        """Answer a booking ask (``referral.accepted`` / ``booking_requested``) once."""
        asked = event.payload(ReferralBookingEvent).ask()
        if asked is None:  # accepted without a visit (a downward referral into follow-up)
            return
        ask = asked.booking
        reserved = ReservedAsk(
            kind="referral",
            ask_id=ask.booking_request_id,
            asks=REFERRAL_ASKS,
            principal=REFERRALS_SERVICE,
            patient_id=asked.patient_id,
            org_id=ask.org_id,
            department_id=ask.department_id,
            reason=f"referral:{asked.referral_id}",
            no_slot=NO_REFERRAL_SLOT,
            referral_id=asked.referral_id,
            booking_request_id=ask.booking_request_id,
            record={"referral_id": asked.referral_id},
        )
        await self.reserved.answer(event, tx, reserved, partial(self._book, tx, asked, reserved))

    async def _book(
        self, tx: Tx, asked: ReferralBookingAsked, reserved: ReservedAsk, now: datetime
    ) -> dict[str, Any]:
        patient = await self.reserved.patient_of(tx, reserved)  # locked: no booking races
        live = await self.db[APPOINTMENTS].find_one(
            {"referral_id": asked.referral_id, "active": True}, {"_id": 1}, session=tx.session
        )
        if live is not None:
            raise Refusal(
                "referral_already_booked",
                f"the referral has a live appointment ({live['_id']}); cancel it first",
            )
        ask = asked.booking
        policy = await self.policies.for_org(ask.org_id)
        dates = referral_rules.referral_dates(policy, now, ask.preferred_date, ask.earliest_date)
        return await self.reserved.book_first(tx, reserved, patient, policy, dates, now)

    # --- cancelling -------------------------------------------------------------------------

    async def cancel(self, event: Envelope, tx: Tx) -> None:
        """Cancel the referral's booked appointment(s): by the service, never a late
        cancellation of the patient's; already cancelled or started ones stay as they are."""
        cancelled = event.payload(Cancelled)
        now = datetime.now(UTC)
        targets: list[dict[str, Any]] = [{"referral_id": cancelled.referral_id}]
        if cancelled.appointment_id:
            targets.append({"_id": cancelled.appointment_id, "patient_id": cancelled.patient_id})
        query = {"$or": targets, "status": AppointmentStatus.BOOKED.value}
        docs = await self.db[APPOINTMENTS].find(query, session=tx.session).to_list(None)
        for doc in docs:
            if doc["starts_at"] <= now:
                log.info("referral.cancel_too_late", appointment_id=doc["_id"])
                continue
            policy = await self.policies.for_org(doc["org_id"])
            await self.cancellation.cancel_in(
                tx,
                REFERRALS_SERVICE,
                doc,
                reason=CANCEL_REASON,
                late=False,
                timezone=policy.timezone,
                now=now,
            )
            log.info("referral.booking_cancelled", appointment_id=doc["_id"])
