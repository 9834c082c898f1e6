"""The appointments side of the referral saga (docs/architecture.md §4, §6).

On ``referral.accepted`` and ``referral.booking_requested`` the referral's patient is
booked into the receiving department's referral pool; on ``referral.cancelled`` that
booking is cancelled. Each handler runs inside the consumer's transaction
(``shared.consumer``), so its writes, its handled-event record and its reply commit
together.

**The booking** is the ordinary one, made by the referrals service (a SERVICE principal:
``booked_by_role`` "service") on the referral channel: the checks and admission of
:mod:`services.appointments.booking_admission` (drawing on the referral pool only), then
:meth:`Booking.claim <services.appointments.booking.Booking.claim>` (bans, per-patient
limits, no double booking, ``appointment.booked`` through the outbox). The date is
``preferred_date`` when the ask names one (the first session of that date, any doctor of
the department, with a free referral number), else the first such session from
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
is leased under ``referral:<booking_request_id>``: the same ask handled again after a
crash takes over its own lease (the same number), and a lease a dead process left is
reconciled against Mongo (:mod:`services.appointments.admission_leases`).

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

import contextlib
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import structlog
from redis.exceptions import RedisError

from services.appointments.admission import Outcome
from services.appointments.booking import Booking, NoSlotLeft
from services.appointments.booking_admission import BookingAdmission, BookRequest
from services.appointments.booking_common import sold_out
from services.appointments.cancellation import Cancellation
from services.appointments.domain import referral_rules
from services.appointments.domain.errors import DomainError
from services.appointments.domain.models import AppointmentStatus, Channel, Pool
from services.appointments.domain.policy import BookingPolicy
from services.appointments.events import BookingRejected
from services.appointments.policies import Policies
from services.appointments.records import PatientRecords
from services.appointments.referral_events import (
    BookingAsk,
    ReferralBookingAsked,
    ReferralBookingEvent,
)
from services.appointments.referral_events import ReferralCancelled as Cancelled
from services.appointments.store import (
    APPOINTMENTS,
    DEPARTMENTS,
    PATIENTS,
    REFERRAL_ASKS,
    SCHEDULES,
    SLOTS,
)
from shared.events import Envelope, make_event
from shared.mongo import Contended, Database, Document, Session
from shared.outbox import Tx
from shared.principal import Principal, Role
from shared.problems import Conflict, Problem

log = structlog.get_logger(__name__)

# who books and cancels for a referral: the referrals service
REFERRALS_SERVICE = Principal(subject="service:referrals", roles=frozenset({Role.SERVICE}))
CANCEL_REASON = "referral_cancelled"
NO_REFERRAL_SLOT = "no_referral_slot"


class Refusal(Exception):
    """The ask is answered with ``appointment.booking.rejected``."""

    def __init__(self, code: str, reason: str, schedule_id: str | None = None) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.schedule_id = schedule_id


class ReferralBookings:
    def __init__(
        self,
        db: Database,
        admission: BookingAdmission,
        booking: Booking,
        cancellation: Cancellation,
        policies: Policies,
        records: PatientRecords,
    ) -> None:
        self.db = db
        self.admission = admission
        self.booking = booking
        self.cancellation = cancellation
        self.policies = policies
        self.records = records

    # --- booking ----------------------------------------------------------------------------

    async def book(self, event: Envelope, tx: Tx) -> None:
        """Answer a booking ask (``referral.accepted`` / ``booking_requested``) once."""
        asked = event.payload(ReferralBookingEvent).ask()
        if asked is None:  # accepted without a visit (a downward referral into follow-up)
            return
        ask = asked.booking
        answered = await self.db[REFERRAL_ASKS].find_one(
            {"_id": ask.booking_request_id}, {"outcome": 1}, session=tx.session
        )
        if answered is not None:
            log.info(
                "referral.ask_already_answered",
                booking_request_id=ask.booking_request_id,
                outcome=answered.get("outcome"),
            )
            return
        now = datetime.now(UTC)
        record: dict[str, Any] = {
            "_id": ask.booking_request_id,
            "referral_id": asked.referral_id,
            "patient_id": asked.patient_id,
            "event_id": event.id,
            "event_type": event.type,
            "created_at": now,
        }
        try:
            view = await self._book(tx, asked, now)
        except Refusal as refusal:
            record |= {"outcome": "rejected", "code": refusal.code, "reason": refusal.reason}
            rejected = BookingRejected(
                patient_id=asked.patient_id,
                schedule_id=refusal.schedule_id,
                code=refusal.code,
                reason=refusal.reason,
                referral_id=asked.referral_id,
                booking_request_id=ask.booking_request_id,
            )
            tx.emit(make_event(rejected, source="appointments", subject=asked.patient_id))
            log.info("referral.booking_rejected", referral_id=asked.referral_id, code=refusal.code)
        else:
            record |= {"outcome": "booked", "appointment_id": view["id"]}
            log.info("referral.booked", referral_id=asked.referral_id, appointment_id=view["id"])
        await self.db[REFERRAL_ASKS].insert_one(record, session=tx.session)

    async def _book(self, tx: Tx, asked: ReferralBookingAsked, now: datetime) -> dict[str, Any]:
        ask, session = asked.booking, tx.session
        patient = await self.db[PATIENTS].find_one({"_id": asked.patient_id}, session=session)
        if patient is None:
            raise Refusal("patient_not_found", f"no patient {asked.patient_id}")
        department = await self.db[DEPARTMENTS].find_one(
            {"_id": ask.department_id}, session=session
        )
        if department is None or department.get("org_id") != ask.org_id:
            raise Refusal(
                "department_not_found", f"no department {ask.department_id} at {ask.org_id}"
            )
        await self.records.lock(patient["_id"], session)  # the patient's bookings serialize
        live = await self.db[APPOINTMENTS].find_one(
            {"referral_id": asked.referral_id, "active": True}, {"_id": 1}, session=session
        )
        if live is not None:
            raise Refusal(
                "referral_already_booked",
                f"the referral has a live appointment ({live['_id']}); cancel it first",
            )
        policy = await self.policies.for_org(ask.org_id)
        first, last = referral_rules.referral_dates(
            policy, now, ask.preferred_date, ask.earliest_date
        )
        refused: Refusal | None = None
        for schedule in await self._candidates(ask, first, last, now, session):
            try:
                return await self._book_in(tx, asked, patient, schedule, policy, now)
            except (DomainError, Problem) as error:
                refusal = Refusal(error.code, error.detail, schedule["_id"])
                if error.code not in referral_rules.SESSION_REFUSALS:
                    raise refusal from error
                if refused is None or refused.code == "slot_sold_out":
                    refused = refusal
        if refused is not None and refused.code != "slot_sold_out":
            raise refused
        when = f"on {first}" if first == last else f"from {first} to {last}"
        raise Refusal(NO_REFERRAL_SLOT, f"no free referral number in {ask.department_id} {when}")

    async def _candidates(
        self, ask: BookingAsk, first: date, last: date, now: datetime, session: Session
    ) -> list[Document]:
        """The department's sessions from ``first`` to ``last`` with a free referral
        number in Mongo (the truth; admission in Redis decides which number), in order."""
        if first > last:
            return []
        query = {
            "org_id": ask.org_id,
            "department_id": ask.department_id,
            "status": "published",
            "clinic_date": {"$gte": first.isoformat(), "$lte": last.isoformat()},
        }
        schedules = (
            await self.db[SCHEDULES]
            .find(query, session=session)
            .sort([("clinic_date", 1), ("starts_at", 1)])
            .to_list(None)
        )
        free_slots = self.db[SLOTS].find(
            {
                "schedule_id": {"$in": [s["_id"] for s in schedules]},
                "pool": Pool.REFERRAL.value,
                "status": "open",
                "extra": False,
                "starts_at": {"$gt": now},
            },
            {"schedule_id": 1},
            session=session,
        )
        free = {slot["schedule_id"] async for slot in free_slots}
        return [s for s in schedules if s["_id"] in free]

    async def _book_in(
        self,
        tx: Tx,
        asked: ReferralBookingAsked,
        patient: Document,
        schedule: Document,
        policy: BookingPolicy,
        now: datetime,
    ) -> dict[str, Any]:
        """Book the patient in this session's referral pool, inside ``tx``."""
        sid, pid = schedule["_id"], patient["_id"]
        request = BookRequest(
            patient_id=pid,
            schedule_id=sid,
            channel=Channel.REFERRAL,
            referral_id=asked.referral_id,
            reason=f"referral:{asked.referral_id}",
        )
        ref = f"referral:{asked.booking.booking_request_id}"
        checked = await self.admission.check(REFERRALS_SERVICE, request, now, ref)
        attempt = replace(checked, pools=[Pool.REFERRAL.value])  # the referral pool only
        admission = await self.admission.admit(attempt, serving_ticket=True)  # no waiting room
        if admission.outcome is Outcome.BUSY:  # numbers in flight may come back: wait
            raise Contended(1)
        if admission.outcome is not Outcome.ADMITTED:
            raise Conflict("duplicate_booking", "already booked in this session")
        gate, slot_id = self.admission.gate, admission.slot_id or ""
        try:
            view = await self.booking.claim(
                tx,
                REFERRALS_SERVICE,
                request,
                patient,
                attempt.schedule,
                policy,
                Channel.REFERRAL,
                slot_id,
                now,
                None,
                request_ref=ref,
                account_id=referral_rules.own_account(patient),
                booking_request_id=asked.booking.booking_request_id,
            )
        except NoSlotLeft:  # Redis was ahead of Mongo
            await gate.release(sid, pid, None, None)
            raise sold_out(schedule) from None
        except (DomainError, Problem) as error:
            await gate.release(sid, pid, admission.pool, slot_id)
            if error.code in referral_rules.CLAIM_REFUSALS:
                raise
            raise RuntimeError(f"referral booking failed: {error.code}") from error
        except BaseException:
            await gate.release(sid, pid, admission.pool, slot_id)
            raise

        async def settle() -> None:
            with contextlib.suppress(RedisError):  # else the reconciler settles it from Mongo
                await gate.settle(sid, pid, admission.lease)

        tx.after_commit.append(settle)
        return view

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
