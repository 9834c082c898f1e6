"""Booking from a department's reserved pool for another service's ask, once per ask.

The reserved pool is the referral pool: the numbers each session holds back for referred
patients and for follow-up revisits. Two askers use it: the referral saga
(:mod:`services.appointments.referral_bookings`) and follow-up revisits
(:mod:`services.appointments.revisit_bookings`). This module is what they share; each
handler runs inside the consumer's transaction (``shared.consumer``), so its writes, its
handled-event record and its reply commit together.

**Once per ask.** Each ask is recorded in its asker's collection (``_id``: the ask's id)
with its outcome, in the transaction that books or rejects it
(:meth:`ReservedBookings.answer`). An ask already answered changes and publishes nothing:
its reply is on the topic already (a second ``appointment.booked`` would text the
patient twice). The admission is leased under ``<kind>:<ask id>``: the same ask handled
again after a crash takes over its own lease (the same number), and a lease a dead
process left is reconciled against Mongo (:mod:`services.appointments.admission_leases`).

**The booking** is the ordinary one, made by the asking service (a SERVICE principal:
``booked_by_role`` "service") on the referral channel, drawing on the referral pool only:
the checks and admission of :mod:`services.appointments.booking_admission`, then
:meth:`Booking.claim <services.appointments.booking.Booking.claim>` (bans, per-patient
limits, no double booking, ``appointment.booked`` through the outbox). The account is
:func:`referral_rules.own_account <services.appointments.domain.referral_rules.own_account>`.
:meth:`ReservedBookings.book_first` tries the department's sessions from ``first`` to
``last`` that have a free reserved number, in date order (a preferred doctor's sessions
first when the ask names one): a session that cannot take the patient (sold out, not
open yet, already booked with that doctor or in that department that day) passes to the
next one; a refusal of the patient (banned, a limit reached) ends the search; no session
at all is the asker's "no slot" code.

**Replies.** ``appointment.booked`` (with the ask's ids and ``pool``) comes from the
booking; a refusal is ``appointment.booking.rejected`` with the ask's ids, a stable
``code`` and a readable ``reason``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

import structlog
from redis.exceptions import RedisError

from services.appointments.admission import Outcome
from services.appointments.booking import Booking, NoSlotLeft
from services.appointments.booking_admission import BookingAdmission, BookRequest
from services.appointments.booking_common import sold_out
from services.appointments.domain import referral_rules
from services.appointments.domain.errors import DomainError
from services.appointments.domain.models import Channel, Pool
from services.appointments.domain.policy import BookingPolicy
from services.appointments.events import BookingRejected
from services.appointments.records import PatientRecords
from services.appointments.store import DEPARTMENTS, PATIENTS, SCHEDULES, SLOTS
from shared.events import Envelope, make_event
from shared.mongo import Contended, Database, Document, Session
from shared.outbox import Tx
from shared.principal import Principal
from shared.problems import Conflict, Problem

log = structlog.get_logger(__name__)


class Refusal(Exception):
    """The ask is answered with ``appointment.booking.rejected``."""

    def __init__(self, code: str, reason: str, schedule_id: str | None = None) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.schedule_id = schedule_id


@dataclass(frozen=True)
class ReservedAsk:
    """One ask for a booking from the reserved pool, whichever service made it."""

    kind: str  # "referral" / "revisit": the lease's ref prefix, named in the log
    ask_id: str  # unique per ask: its record's _id and the lease's ref
    asks: str  # the collection its record goes to
    principal: Principal  # the asking service: the booking is made (and booked_by) by it
    patient_id: str
    org_id: str
    department_id: str
    reason: str  # the booking's stated reason
    no_slot: str  # the code when no session has a free reserved number
    referral_id: str | None = None
    doctor_id: str | None = None  # a doctor whose sessions are tried first
    # the ask's id on its reply and its booking, under the asker's name for it
    booking_request_id: str | None = None  # a referral's
    revisit_request_id: str | None = None  # a follow-up revisit's
    record: dict[str, Any] = field(default_factory=dict)  # more facts kept on its record


Book = Callable[[datetime], Awaitable[dict[str, Any]]]


class ReservedBookings:
    def __init__(
        self, db: Database, admission: BookingAdmission, booking: Booking, records: PatientRecords
    ) -> None:
        self.db = db
        self.admission = admission
        self.booking = booking
        self.records = records

    async def answer(self, event: Envelope, tx: Tx, ask: ReservedAsk, book: Book) -> None:
        """Answer ``ask`` once: ``book`` it, or reply with its :class:`Refusal`, and
        record the outcome; an ask already answered changes and publishes nothing."""
        answered = await self.db[ask.asks].find_one(
            {"_id": ask.ask_id}, {"outcome": 1}, session=tx.session
        )
        if answered is not None:
            log.info(
                "reserved.ask_already_answered",
                kind=ask.kind,
                ask_id=ask.ask_id,
                outcome=answered.get("outcome"),
            )
            return
        now = datetime.now(UTC)
        record: dict[str, Any] = {
            "_id": ask.ask_id,
            **ask.record,
            "patient_id": ask.patient_id,
            "event_id": event.id,
            "event_type": event.type,
            "created_at": now,
        }
        try:
            view = await book(now)
        except Refusal as refusal:
            record |= {"outcome": "rejected", "code": refusal.code, "reason": refusal.reason}
            rejected = BookingRejected(
                patient_id=ask.patient_id,
                schedule_id=refusal.schedule_id,
                code=refusal.code,
                reason=refusal.reason,
                referral_id=ask.referral_id,
                booking_request_id=ask.booking_request_id,
                revisit_request_id=ask.revisit_request_id,
            )
            tx.emit(make_event(rejected, source="appointments", subject=ask.patient_id))
            log.info("reserved.rejected", kind=ask.kind, ask_id=ask.ask_id, code=refusal.code)
        else:
            record |= {"outcome": "booked", "appointment_id": view["id"]}
            log.info("reserved.booked", kind=ask.kind, ask_id=ask.ask_id, appointment_id=view["id"])
        await self.db[ask.asks].insert_one(record, session=tx.session)

    async def patient_of(self, tx: Tx, ask: ReservedAsk) -> Document:
        """The ask's patient, their booking record locked (their bookings serialize),
        once the patient and the department are known (else a :class:`Refusal`)."""
        session = tx.session
        patient = await self.db[PATIENTS].find_one({"_id": ask.patient_id}, session=session)
        if patient is None:
            raise Refusal("patient_not_found", f"no patient {ask.patient_id}")
        department = await self.db[DEPARTMENTS].find_one(
            {"_id": ask.department_id}, session=session
        )
        if department is None or department.get("org_id") != ask.org_id:
            raise Refusal(
                "department_not_found", f"no department {ask.department_id} at {ask.org_id}"
            )
        await self.records.lock(patient["_id"], session)
        return patient

    async def book_first(
        self,
        tx: Tx,
        ask: ReservedAsk,
        patient: Document,
        policy: BookingPolicy,
        dates: tuple[date, date],
        now: datetime,
    ) -> dict[str, Any]:
        """Book the first session from ``dates[0]`` to ``dates[1]`` that takes the patient."""
        first, last = dates
        refused: Refusal | None = None
        for schedule in await self._candidates(ask, first, last, now, tx.session):
            try:
                return await self._book_in(tx, ask, patient, schedule, policy, now)
            except (DomainError, Problem) as error:
                refusal = Refusal(error.code, error.detail, schedule["_id"])
                if error.code not in referral_rules.SESSION_REFUSALS:
                    raise refusal from error
                if refused is None or refused.code == "slot_sold_out":
                    refused = refusal
        if refused is not None and refused.code != "slot_sold_out":
            raise refused
        when = f"on {first}" if first == last else f"from {first} to {last}"
        raise Refusal(ask.no_slot, f"no free reserved number in {ask.department_id} {when}")

    async def _candidates(
        self, ask: ReservedAsk, first: date, last: date, now: datetime, session: Session
    ) -> list[Document]:
        """The department's sessions from ``first`` to ``last`` with a free reserved
        number in Mongo (the truth; admission in Redis decides which number), in order:
        the preferred doctor's first, then by date and time."""
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
        found = [s for s in schedules if s["_id"] in free]
        if ask.doctor_id is not None:  # a stable sort: the doctor's sessions first, in order
            found.sort(key=lambda s: s.get("resource_id") != ask.doctor_id)
        return found

    async def _book_in(
        self,
        tx: Tx,
        ask: ReservedAsk,
        patient: Document,
        schedule: Document,
        policy: BookingPolicy,
        now: datetime,
    ) -> dict[str, Any]:
        """Book the patient in this session's reserved pool, inside ``tx``."""
        sid, pid = schedule["_id"], patient["_id"]
        request = BookRequest(
            patient_id=pid,
            schedule_id=sid,
            channel=Channel.REFERRAL,
            referral_id=ask.referral_id,
            reason=ask.reason,
        )
        ref = f"{ask.kind}:{ask.ask_id}"
        checked = await self.admission.check(ask.principal, request, now, ref)
        attempt = replace(checked, pools=[Pool.REFERRAL.value])  # the reserved pool only
        admission = await self.admission.admit(attempt, serving_ticket=True)  # no waiting room
        if admission.outcome is Outcome.BUSY:  # numbers in flight may come back: wait
            raise Contended(1)
        if admission.outcome is not Outcome.ADMITTED:
            raise Conflict("duplicate_booking", "already booked in this session")
        gate, slot_id = self.admission.gate, admission.slot_id or ""
        try:
            view = await self.booking.claim(
                tx,
                ask.principal,
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
                booking_request_id=ask.booking_request_id,
                revisit_request_id=ask.revisit_request_id,
            )
        except NoSlotLeft:  # Redis was ahead of Mongo
            await gate.release(sid, pid, None, None)
            raise sold_out(schedule) from None
        except (DomainError, Problem) as error:
            await gate.release(sid, pid, admission.pool, slot_id)
            if error.code in referral_rules.CLAIM_REFUSALS:
                raise
            raise RuntimeError(f"{ask.kind} booking failed: {error.code}") from error
        except BaseException:
            await gate.release(sid, pid, admission.pool, slot_id)
            raise

        async def settle() -> None:
            with contextlib.suppress(RedisError):  # else the reconciler settles it from Mongo
                await gate.settle(sid, pid, admission.lease)

        tx.after_commit.append(settle)
        return view
