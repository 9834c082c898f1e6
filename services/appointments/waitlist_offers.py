"""Waitlist offers: a freed slot is held for the first in line until confirmed or expired."""

from __future__ import annotations

from datetime import UTC, date, datetime

import structlog
from pymongo import ReturnDocument
from redis.exceptions import RedisError

from services.appointments.admission import AdmissionGate
from services.appointments.domain import waitlist_rules
from services.appointments.domain.models import Pool
from services.appointments.domain.policy import BookingPolicy
from services.appointments.events import WaitlistOffered
from services.appointments.policies import Policies
from services.appointments.store import APPOINTMENTS, SCHEDULES, SLOTS, WAITLIST
from services.appointments.waitlist_entries import (
    ACTIVE,
    CLOSE_JOB,
    HELD,
    MAX_CANDIDATES,
    OFFER_EXPIRED_JOB,
    OFFERED,
    OPEN,
    WAITING,
    EntryStatus,
    becomes,
    close_job_key,
    offer_job_key,
    to_ms,
)
from shared.events import make_event
from shared.jobs import cancel_job, schedule_job
from shared.mongo import Database, Document
from shared.outbox import Tx

log = structlog.get_logger(__name__)


class WaitlistOffers:
    """Slots passing through the queue: offered, handed on, expired, closed (in the caller's tx)."""

    def __init__(self, db: Database, gate: AdmissionGate, policies: Policies) -> None:
        self.db = db
        self.gate = gate
        self.policies = policies

    async def offer_freed_slot(self, tx: Tx, appointment: Document, slot: Document) -> bool:
        """Offer a slot freed by a cancellation to the waitlist; True if it was offered."""
        sid = appointment["schedule_id"]
        waiting = {"schedule_id": sid, "status": WAITING}
        if await self.db[WAITLIST].find_one(waiting, {"_id": 1}, session=tx.session) is None:
            return False
        schedule = await self.db[SCHEDULES].find_one({"_id": sid}, session=tx.session)
        if schedule is None:
            return False
        policy = await self.policies.for_org(schedule["org_id"])
        now = datetime.now(UTC)
        return await self.offer_next(tx, schedule, policy, slot, now, appointment["patient_id"])

    async def offer_next(
        self,
        tx: Tx,
        schedule: Document,
        policy: BookingPolicy,
        slot: Document,
        now: datetime,
        skip_patient: str = "",
    ) -> bool:
        """Hold the (open) slot for the first waiting entry whose channel may use its pool."""
        day = date.fromisoformat(schedule["clinic_date"])
        starts = slot["starts_at"]
        if (
            schedule["status"] != "published"
            or slot.get("extra")
            or not waitlist_rules.may_offer_waitlist(
                policy, now=now, clinic_date=day, slot_starts_at=starts
            )
        ):
            return False
        channels = [c.value for c in waitlist_rules.waitlist_channels_for(Pool(slot["pool"]))]
        query = {"schedule_id": schedule["_id"], "status": WAITING, "channel": {"$in": channels}}
        query["patient_id"] = {"$ne": skip_patient}  # not back to the patient who gave it up
        expires = to_ms(waitlist_rules.waitlist_offer_expires_at(policy, now))
        offer = {"slot_id": slot["_id"], **{k: slot[k] for k in ("number", "starts_at", "pool")}}
        db, session = self.db, tx.session
        for _ in range(MAX_CANDIDATES):
            candidate = await db[WAITLIST].find_one(query, sort=[("_id", 1)], session=session)
            if candidate is None:
                return False
            if await self.booked_meanwhile(tx, candidate, now):
                continue
            entry = await db[WAITLIST].find_one_and_update(
                {"_id": candidate["_id"], "status": WAITING},
                becomes(EntryStatus.OFFERED, offer=offer, offered_at=now, offer_expires_at=expires),
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if entry is None:
                continue
            held = await db[SLOTS].update_one(
                {"_id": slot["_id"], "status": OPEN},
                {"$set": {"status": HELD, "held_for": entry["_id"], "held_until": expires}},
                session=session,
            )
            if held.modified_count != 1:  # this very transaction opened it: cannot happen
                raise RuntimeError(f"slot {slot['_id']} changed while being offered")
            eid = entry["_id"]
            await self.schedule_job_at(
                tx, OFFER_EXPIRED_JOB, expires, offer_job_key(eid), entry_id=eid
            )
            facts = ("patient_id", "account_id", "schedule_id", "resource_name", "department_name")
            offered = WaitlistOffered(
                **{k: entry[k] for k in (*facts, "session")},
                waitlist_id=entry["_id"],
                slot_id=slot["_id"],
                clinic_date=day,
                starts_at=starts,
                offer_expires_at=expires,
            )
            tx.emit(make_event(offered, source="appointments", subject=entry["patient_id"]))
            log.info("waitlist.offered", entry_id=entry["_id"], slot_id=slot["_id"])
            return True
        return False

    async def booked_meanwhile(self, tx: Tx, entry: Document, now: datetime) -> bool:
        """A waiting patient who has booked this session since leaves the line as booked."""
        here = {"patient_id": entry["patient_id"], "schedule_id": entry["schedule_id"]}
        found = await self.db[APPOINTMENTS].find_one({**here, "active": True}, session=tx.session)
        if found is None:
            return False
        update = becomes(EntryStatus.BOOKED, appointment_id=found["_id"], booked_at=now)
        waiting = {"_id": entry["_id"], "status": WAITING}
        await self.db[WAITLIST].update_one(waiting, update, session=tx.session)
        return True

    async def hand_on(self, tx: Tx, entry: Document, now: datetime) -> bool:
        """The slot held for ``entry`` goes to the next in line, or back to booking."""
        slot = await self.db[SLOTS].find_one_and_update(
            {"_id": entry["offer"]["slot_id"], "status": HELD, "held_for": entry["_id"]},
            {"$set": {"status": OPEN}, "$unset": {"held_for": "", "held_until": ""}},
            return_document=ReturnDocument.AFTER,
            session=tx.session,
        )
        if slot is None:  # not held for it any more (the session was cancelled)
            return False
        schedule = await self.db[SCHEDULES].find_one(
            {"_id": slot["schedule_id"]}, session=tx.session
        )
        assert schedule is not None  # a slot belongs to a schedule
        policy = await self.policies.for_org(schedule["org_id"])
        if await self.offer_next(tx, schedule, policy, slot, now):
            return True
        if not slot.get("extra"):
            sid, pool, slot_id = slot["schedule_id"], slot["pool"], slot["_id"]
            tx.after_commit.append(lambda: self.reopen(sid, pool, slot_id))
        log.info("waitlist.slot_reopened", slot_id=slot["_id"], schedule_id=slot["schedule_id"])
        return False

    async def expire_offer(self, tx: Tx, entry_id: str, now: datetime) -> bool:
        """The offer lapses (never before ``offer_expires_at``); its slot is handed on."""
        entry = await self.db[WAITLIST].find_one({"_id": entry_id}, session=tx.session)
        if entry is None or entry["status"] != OFFERED:  # confirmed, left, or a retry
            log.info("waitlist.expiry_skipped", entry_id=entry_id)
            return False
        if now < entry["offer_expires_at"]:  # run early: come back when the offer lapses
            due, key = entry["offer_expires_at"], offer_job_key(entry_id)
            await self.schedule_job_at(tx, OFFER_EXPIRED_JOB, due, key, entry_id=entry_id)
            return False
        expired = await self.db[WAITLIST].find_one_and_update(
            {"_id": entry_id, "status": OFFERED},
            becomes(EntryStatus.EXPIRED, expired_at=now),
            session=tx.session,
        )
        if expired is None:
            return False
        log.info("waitlist.offer_expired", entry_id=entry_id, schedule_id=entry["schedule_id"])
        await self.hand_on(tx, expired, now)
        return True

    async def close_queue(self, tx: Tx, schedule_id: str, now: datetime) -> int:
        """At the closing time waiting entries close; offers stand until confirmed or lapsed.

        For a cancelled session (停诊) every active entry closes at once: call this inside
        the cancelling transaction (its held slots are cancelled with the others).
        """
        schedule = await self.db[SCHEDULES].find_one({"_id": schedule_id}, session=tx.session)
        if schedule is None:
            return 0
        policy = await self.policies.for_org(schedule["org_id"])
        closes = waitlist_rules.waitlist_closes_at(
            policy, date.fromisoformat(schedule["clinic_date"])
        )
        cancelled = schedule["status"] != "published"
        if now < closes and not cancelled:  # the policy moved the closing time later
            key = close_job_key(schedule_id)
            await self.schedule_job_at(tx, CLOSE_JOB, closes, key, schedule_id=schedule_id)
            return 0
        statuses = ACTIVE if cancelled else [WAITING]
        query = {"schedule_id": schedule_id, "status": {"$in": statuses}}
        closing = await self.db[WAITLIST].find(query, {"_id": 1}, session=tx.session).to_list(None)
        update = becomes(EntryStatus.CLOSED, closed_at=now)
        await self.db[WAITLIST].update_many(query, update, session=tx.session)
        for entry in closing:
            await cancel_job(self.db, tx.session, offer_job_key(entry["_id"]))
        log.info("waitlist.closed", schedule_id=schedule_id, entries=len(closing))
        return len(closing)

    async def schedule_job_at(
        self, tx: Tx, kind: str, due_at: datetime, key: str, **payload: str
    ) -> None:
        await schedule_job(self.db, tx.session, kind=kind, due_at=due_at, payload=payload, key=key)

    # --- Redis admission, after the commit ----------------------------------------------

    async def reopen(self, schedule_id: str, pool: str, slot_id: str) -> None:
        try:
            await self.gate.release(schedule_id, "", pool, slot_id)
        except RedisError as exc:  # Redis stays behind Mongo until the next rebuild
            log.warning("waitlist.reopen_failed", slot_id=slot_id, error=str(exc))

    async def guard(self, schedule_id: str, patient_id: str) -> None:
        """The patient joins the session's duplicate guard: no second number by booking."""
        gate = self.gate
        try:
            await gate.guard(schedule_id, patient_id)
        except RedisError as exc:  # rebuilt from Mongo (active bookings) with the state
            log.warning("waitlist.guard_failed", schedule_id=schedule_id, error=str(exc))
