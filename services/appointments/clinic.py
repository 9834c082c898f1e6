"""A doctor's cancelled session (停诊): bookings cancelled, patients told, priority rebooking.

Cancelling a session is one transaction: the schedule, its open and held slots, every
active booking (no late-cancel offence: the hospital cancelled), one cancelled event per
booking plus one for the session, and a rebooking offer per affected patient. After the
commit the session's admission state leaves Redis, so nobody is admitted to it again.

A rebooking offer lets the patient take a slot in another session of the same department
within the next 14 days, before that session's public release and from any pool, for 48
hours (or until that session starts). It still goes through the admission gate and the
conditional slot claim of ``booking.py``, so no slot is ever booked twice.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from redis.exceptions import RedisError

from services.appointments import booking
from services.appointments.admission import AdmissionGate, Outcome
from services.appointments.booking import Booking, BookRequest, NoSlotLeft
from services.appointments.booking_common import Idempotency, sold_out
from services.appointments.domain import booking_rules, clinic_rules
from services.appointments.domain.models import AppointmentStatus, SlotStatus
from services.appointments.events import AppointmentCancelled, ScheduleCancelled
from services.appointments.patients import Patients
from services.appointments.policies import Policies
from services.appointments.schedules import ALL_POOLS, Schedules
from services.appointments.store import APPOINTMENTS, REBOOKING_OFFERS, SCHEDULES, SLOTS
from services.appointments.views import appointment_facts
from services.appointments.waitlist import Waitlist
from shared.audit import AuditLog
from shared.events import make_event
from shared.idempotency import StoredResponse
from shared.ids import new_id
from shared.jobs import cancel_job
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.principal import Principal
from shared.problems import Conflict, NotFound
from shared.scoping import may_see_org, other_org

log = structlog.get_logger(__name__)

MAX_ALTERNATIVES = 20
OFFER_COPIES = ("patient_id", "account_id", "org_id", "department_id", "department_name")
CANCELLED_COPIES = ("resource_name", "clinic_date", "session", "number", "starts_at")
ALTERNATIVE_COPIES = ("resource_id", "resource_name", "clinic_type", "clinic_date", "session")
HOSPITAL = "hospital"  # cancelled_by_role of bookings cancelled with their session
OFFER_SHOWS = (
    *("patient_id", "reason", "department_id", "department_name", "cancelled"),
    *("cancelled_schedule_id", "cancelled_appointment_id", "created_at", "expires_at"),
)


def offer_not_found() -> NotFound:
    return NotFound("rebooking_offer_not_found", "no such offer", detail_zh="改约邀请不存在")


def offer_closed(status: str, appointment_id: str | None = None) -> Conflict:
    return Conflict(
        "rebooking_offer_closed",
        f"this rebooking offer is {status}",
        detail_zh="该改约邀请已使用或已失效",
        extra={"appointment_id": appointment_id},
    )


class ClinicCancellation:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        gate: AdmissionGate,
        patients: Patients,
        schedules: Schedules,
        policies: Policies,
        booking: Booking,
        waitlist: Waitlist,
        audit: AuditLog,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.gate = gate
        self.patients = patients
        self.schedules = schedules
        self.policies = policies
        self.booking = booking
        self.waitlist = waitlist
        self.audit = audit

    # --- cancelling a session -------------------------------------------------------------

    async def cancel_session(
        self,
        principal: Principal,
        schedule: Document,
        *,
        reason: str,
        idempotency: Idempotency | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        sid = schedule["_id"]
        clinic_rules.check_session_cancellable(
            status=schedule["status"], now=now, ends_at=schedule["ends_at"]
        )
        alternatives = await self.alternatives(
            schedule["org_id"], schedule["department_id"], sid, now, offered_at=now
        )

        async def work(tx: Tx) -> dict[str, Any]:
            audit = partial(self.audit.record, principal, reason=reason, session=tx.session)
            by = {"id": principal.subject, "role": principal.primary_role}
            closed = {"status": "cancelled", "cancelled_at": now, "cancel_reason": reason}
            done = await self.db[SCHEDULES].find_one_and_update(
                {"_id": sid, "status": "published"},
                {"$set": {**closed, "cancelled_by": by}},
                session=tx.session,
            )
            if done is None:  # cancelled by someone else since we looked
                clinic_rules.check_session_cancellable(status="cancelled", now=now, ends_at=now)
            tx.after_commit.append(lambda: self.schedules.invalidate(sid))
            by = {**by, "role": HOSPITAL, "staff_role": by["role"]}
            bookings = await self._cancel_bookings(tx, sid, {**closed, "cancelled_by": by})
            for job_key in (f"pool-return:{sid}", f"no-show:{sid}"):
                await cancel_job(self.db, tx.session, job_key)
            offers = [self._offer(b, reason, alternatives, now) for b in bookings]
            if offers:
                await self.db[REBOOKING_OFFERS].insert_many(offers, session=tx.session)
            offer_of = {o["cancelled_appointment_id"]: o for o in offers}
            for appt in bookings:
                offer = offer_of[appt["_id"]]
                cancelled = AppointmentCancelled(
                    **appointment_facts(appt),
                    reason=reason,
                    cancelled_by_role=HOSPITAL,
                    rebooking_offer_id=offer["_id"],
                    rebooking_offer_expires_at=offer["expires_at"],
                )
                tx.emit(make_event(cancelled, source="appointments", subject=appt["patient_id"]))
                await audit(
                    "appointment.cancel",
                    patient_id=appt["patient_id"],
                    resource=f"appointment:{appt['_id']}",
                    details={"schedule_cancelled": sid},
                )
            facts = {k: schedule[k] for k in ("org_id", "department_id", "resource_id", "session")}
            event = ScheduleCancelled(
                **facts,
                schedule_id=sid,
                clinic_date=date.fromisoformat(schedule["clinic_date"]),
                reason=reason,
                affected_appointments=len(bookings),
            )
            tx.emit(make_event(event, source="appointments", subject=sid))
            await audit(
                "schedule.cancel",
                patient_id=None,
                resource=f"schedule:{sid}",
                details={"affected_appointments": len(bookings)},
            )
            tx.after_commit.append(lambda: self._forget(sid))
            # nobody is left waiting for a session that will not take place
            await self.waitlist.close_queue(tx, sid, datetime.now(UTC))
            result = {
                "schedule_id": sid,
                "status": "cancelled",
                "cancelled_appointments": len(bookings),
                "rebooking_offers": len(offers),
                "alternatives": [a["schedule_id"] for a in alternatives],
            }
            if idempotency is not None:
                stored = StoredResponse(200, result)
                await idempotency.keys.complete(
                    idempotency.scope, idempotency.key, stored, session=tx.session
                )
            return result

        return await self.outbox.transaction(work)

    async def _cancel_bookings(self, tx: Tx, sid: str, cancelled: Document) -> list[Document]:
        """Cancel the session's booked appointments (no offence) and close all its free slots."""
        booked = {"schedule_id": sid, "status": AppointmentStatus.BOOKED.value}
        bookings = await self.db[APPOINTMENTS].find(booked, session=tx.session).to_list(None)
        cancelled = {**cancelled, "active": False, "late_cancel": False, "session_cancelled": True}
        await self.db[APPOINTMENTS].update_many(
            {**booked, "_id": {"$in": [b["_id"] for b in bookings]}},
            {"$set": cancelled, "$inc": {"version": 1}},
            session=tx.session,
        )
        free = [SlotStatus.OPEN.value, SlotStatus.HELD.value]
        await self.db[SLOTS].update_many(
            {
                "schedule_id": sid,
                "$or": [
                    {"status": {"$in": free}},
                    {"_id": {"$in": [b["slot_id"] for b in bookings]}},
                ],
            },
            {
                "$set": {
                    "status": SlotStatus.CANCELLED.value,
                    "cancelled_at": cancelled["cancelled_at"],
                }
            },
            session=tx.session,
        )
        return bookings

    async def _forget(self, sid: str) -> None:
        """Nobody is admitted to a cancelled session: its Redis state goes (Mongo refuses too)."""
        try:
            await self.gate.forget(sid, ALL_POOLS)
        except RedisError:  # booking.py refuses a cancelled schedule before admission anyway
            log.warning("appointments.forget_admission_failed", schedule_id=sid)

    @staticmethod
    def _offer(
        booking: Document, reason: str, alternatives: list[dict[str, Any]], now: datetime
    ) -> Document:
        return {
            "_id": new_id(),
            **{k: booking[k] for k in OFFER_COPIES},
            "cancelled_schedule_id": booking["schedule_id"],
            "cancelled_appointment_id": booking["_id"],
            "cancelled": {k: booking[k] for k in CANCELLED_COPIES},
            "reason": reason,
            "alternatives": [
                {k: v for k, v in a.items() if k != "remaining"} for a in alternatives
            ],
            "status": "open",
            "created_at": now,
            "expires_at": clinic_rules.rebooking_offer_expires_at(now),
        }

    # --- alternatives and offers ----------------------------------------------------------

    async def offers_of(self, patient_ids: list[str], now: datetime) -> list[dict[str, Any]]:
        """The patients' offers, newest first (100 at most)."""
        docs = (
            await self.db[REBOOKING_OFFERS]
            .find({"patient_id": {"$in": patient_ids}})
            .sort("created_at", -1)
            .to_list(100)
        )
        return [await self.offer_view(doc, now) for doc in docs]

    async def offer_view(self, doc: Document, now: datetime) -> dict[str, Any]:
        """An offer with the alternatives that can be taken right now (an open offer only)."""
        status = doc["status"]
        if status == "open" and now >= doc["expires_at"]:
            status = "expired"
        alternatives: list[dict[str, Any]] = []
        if status == "open":
            alternatives = await self.alternatives(
                doc["org_id"],
                doc["department_id"],
                doc["cancelled_schedule_id"],
                now,
                offered_at=doc["created_at"],
            )
        return {
            "id": doc["_id"],
            "status": status,
            **{k: doc[k] for k in OFFER_SHOWS},
            "alternatives": alternatives,
            "appointment_id": doc.get("appointment_id"),
        }

    async def alternatives(
        self, org_id: str, department_id: str, exclude: str, now: datetime, *, offered_at: datetime
    ) -> list[dict[str, Any]]:
        """Published sessions of the department within the horizon of an offer made at
        ``offered_at``, not started, with a free slot in any pool."""
        policy = await self.policies.for_org(org_id)
        zone = ZoneInfo(policy.timezone)
        offer_expires_at = clinic_rules.rebooking_offer_expires_at(offered_at)
        found = await self.schedules.search(
            org_id=org_id,
            department_id=department_id,
            resource_id=None,
            date_from=booking_rules.clinic_date_of(now, policy.timezone),
            date_to=clinic_rules.rebooking_horizon(offered_at, policy.timezone)[1],
        )
        out: list[dict[str, Any]] = []
        for doc in found:
            if doc["_id"] == exclude or doc["starts_at"] <= now:
                continue
            remaining = sum((await self.schedules.availability(doc["_id"])).values())
            if remaining > 0 and len(out) < MAX_ALTERNATIVES:
                out.append(
                    {
                        "schedule_id": doc["_id"],
                        **{k: doc.get(k) for k in ALTERNATIVE_COPIES},
                        "starts_at": doc["starts_at"],
                        "starts_local": doc["starts_at"].astimezone(zone).isoformat(),
                        "valid_until": clinic_rules.alternative_valid_until(
                            offer_expires_at, doc["starts_at"]
                        ),
                        "remaining": remaining,
                    }
                )
        return out

    async def _offer_for(self, principal: Principal, offer_id: str) -> Document:
        doc = await self.db[REBOOKING_OFFERS].find_one({"_id": offer_id})
        if doc is None:
            raise offer_not_found()
        if principal.is_staff:  # staff of the offer's organization only
            if not may_see_org(principal, doc["org_id"]):
                raise other_org()  # refused and audited
            return doc
        patient = await self.patients.get(doc["patient_id"])
        if principal.subject not in patient.get("account_ids", []):
            raise offer_not_found()  # someone else's offer looks like no offer (API1)
        return doc

    # --- accepting an offer ---------------------------------------------------------------

    async def accept(
        self,
        principal: Principal,
        offer_id: str,
        schedule_id: str,
        *,
        idempotency: Idempotency | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Book the patient into an alternative: before release, from any pool, still once."""
        now = now or datetime.now(UTC)
        offer = await self._offer_for(principal, offer_id)
        if offer["status"] != "open":
            raise offer_closed(offer["status"], offer.get("appointment_id"))
        schedule = await self.schedules.get(schedule_id)
        policy = await self.policies.for_org(schedule["org_id"])
        clinic_rules.check_rebooking_alternative(
            now=now, offer_expires_at=offer["expires_at"], starts_at=schedule["starts_at"]
        )
        qualifies = (
            schedule["status"] == "published"
            and schedule["_id"] != offer["cancelled_schedule_id"]
            and (schedule["org_id"], schedule["department_id"])
            == (offer["org_id"], offer["department_id"])
            and date.fromisoformat(schedule["clinic_date"])
            <= clinic_rules.rebooking_horizon(offer["created_at"], policy.timezone)[1]
        )
        if not qualifies:
            raise Conflict(
                "not_an_alternative",
                "this session is not offered for rebooking",
                detail_zh="该出诊不在可改约范围内",
            )
        patient = await self.patients.get_for(principal, offer["patient_id"])
        channel = booking.channel_for(principal, None)
        gate, pid = self.gate, patient["_id"]
        admission = await gate.admit(schedule_id, pid, ALL_POOLS)
        if admission.outcome == Outcome.UNINITIALIZED:
            await self.schedules.sync_admission(schedule_id)
            admission = await gate.admit(schedule_id, pid, ALL_POOLS)
        if admission.outcome == Outcome.DUPLICATE:
            raise Conflict(
                "duplicate_booking",
                "already booked in this session",
                detail_zh="您已预约该医生同一时段的号源",
            )
        if admission.outcome != Outcome.ADMITTED:
            raise sold_out(schedule)
        slot_id = admission.slot_id or ""
        request = BookRequest(patient_id=pid, schedule_id=schedule_id, reason="priority rebooking")
        claim = (principal, request, patient, schedule, policy, channel, slot_id, now, idempotency)

        async def work(tx: Tx) -> dict[str, Any]:
            view = await self.booking.claim(tx, *claim)
            taken = await self.db[REBOOKING_OFFERS].update_one(
                {"_id": offer_id, "status": "open"},
                {
                    "$set": {
                        "status": "accepted",
                        "accepted_at": now,
                        "accepted_schedule_id": schedule_id,
                        "appointment_id": view["id"],
                    }
                },
                session=tx.session,
            )
            if taken.modified_count != 1:
                raise offer_closed("already used")
            return view

        try:
            return await self.outbox.transaction(work)
        except NoSlotLeft:
            await gate.release(schedule_id, pid, None, None)
            raise sold_out(schedule) from None
        except BaseException:
            with contextlib.suppress(RedisError):
                await gate.release(schedule_id, pid, admission.pool, slot_id)
            raise
