"""The appointments side of follow-up revisits (docs/adr/0007-followup.md).

On ``followup.revisit_requested`` the plan's patient is booked into the plan's
organization and department from the reserved (referral) pool: the numbers each session
holds back for referred patients and revisits. The machinery is the referral saga's
(:mod:`services.appointments.reserved_bookings`); the handler runs inside the consumer's
transaction, so its writes, its handled-event record and its reply commit together.

**The booking** is made by the followup service (a SERVICE principal: ``booked_by_role``
"service") on the referral channel, the one that draws the reserved pool, for the
account :func:`referral_rules.own_account
<services.appointments.domain.referral_rules.own_account>` names (the patient's own,
else the first that linked them). It is the first session, any doctor of the
department, from max(today, ``earliest_date``) to ``latest_date`` (else the referral
horizon, today + ``referral_release_days_ahead``) with a free reserved number; when the
ask names ``doctor_id``, that doctor's sessions in the window come first. A session that
cannot take the patient passes to the next one; a refusal of the patient (banned, a
limit reached) ends the search.

**Once per ask.** Each ask is recorded in ``revisit_asks`` (``_id``: its
``revisit_request_id``) with its outcome, in the transaction that books or rejects it: a
redelivered event is dropped by the consumer, and another event with an ask already
answered changes and publishes nothing. The admission is leased under
``revisit:<revisit_request_id>``, so the same ask after a crash takes its own number.

**Replies.** ``appointment.booked`` with ``revisit_request_id`` and ``pool``; or
``appointment.booking.rejected`` with ``revisit_request_id``, a stable ``code`` and a
readable ``reason``: ``patient_not_found``, ``department_required`` (the plan names no
department), ``department_not_found``, ``no_reserved_slot`` (no free reserved number in
the window: the followup service has an agent offer one), or the booking's own code
(``patient_banned``, ``active_booking_limit``, ``real_name_day_limit``,
``department_day_limit``, ``duplicate_booking``, ``slot_not_released``, ...).
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from services.appointments.domain import referral_rules
from services.appointments.policies import Policies
from services.appointments.reserved_bookings import Refusal, ReservedAsk, ReservedBookings
from services.appointments.revisit_events import RevisitRequested
from services.appointments.store import REVISIT_ASKS
from shared.events import Envelope
from shared.outbox import Tx
from shared.principal import Principal, Role

# who books a revisit: the followup service
FOLLOWUP_SERVICE = Principal(subject="service:followup", roles=frozenset({Role.SERVICE}))
NO_RESERVED_SLOT = "no_reserved_slot"
DEPARTMENT_REQUIRED = "department_required"


class RevisitBookings:
    def __init__(self, reserved: ReservedBookings, policies: Policies) -> None:
        self.reserved = reserved
        self.policies = policies

    async def book(self, event: Envelope, tx: Tx) -> None:
        """Answer a revisit ask (``followup.revisit_requested``) once."""
        asked = event.payload(RevisitRequested)
        ask = ReservedAsk(
            kind="revisit",
            ask_id=asked.revisit_request_id,
            asks=REVISIT_ASKS,
            principal=FOLLOWUP_SERVICE,
            patient_id=asked.patient_id,
            org_id=asked.org_id,
            department_id=asked.department_id or "",
            reason=f"revisit:{asked.plan_id}",
            no_slot=NO_RESERVED_SLOT,
            doctor_id=asked.doctor_id,
            revisit_request_id=asked.revisit_request_id,
            record={
                "plan_id": asked.plan_id,
                "org_id": asked.org_id,
                "department_id": asked.department_id,
                "reason_asked": asked.reason,
            },
        )
        await self.reserved.answer(event, tx, ask, partial(self._book, tx, asked, ask))

    async def _book(
        self, tx: Tx, asked: RevisitRequested, ask: ReservedAsk, now: datetime
    ) -> dict[str, Any]:
        if asked.department_id is None:
            raise Refusal(DEPARTMENT_REQUIRED, "the plan names no department to book in")
        patient = await self.reserved.patient_of(tx, ask)
        policy = await self.policies.for_org(asked.org_id)
        first, horizon = referral_rules.referral_dates(policy, now, None, asked.earliest_date)
        dates = (first, asked.latest_date or horizon)
        return await self.reserved.book_first(tx, ask, patient, policy, dates, now)
