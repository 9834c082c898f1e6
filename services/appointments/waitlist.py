"""Waitlist (候补): join a full session; a freed slot is offered to the first in line.

An entry is ``waiting`` until a cancellation frees a slot its channel may use: the slot is
then ``held`` for it and the entry ``offered`` until ``offer_expires_at``. Confirming books
the held slot like a normal booking (it never goes through Redis admission); an offer that
expires or is given up passes to the next in line, else the slot is bookable again. Every
change is a conditional update inside one outbox transaction, so job retries and races
between confirm, leave and expiry never apply twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import structlog
from pydantic import BaseModel, Field
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError
from redis.exceptions import RedisError

from services.appointments.booking import Idempotency, channel_for
from services.appointments.domain import rules
from services.appointments.domain.models import AppointmentStatus, Channel, Pool, SlotStatus
from services.appointments.domain.policy import BookingPolicy
from services.appointments.events import AppointmentBooked, WaitlistOffered
from services.appointments.store import APPOINTMENTS, RESOURCES, SCHEDULES, SLOTS, WAITLIST
from services.appointments.views import appointment_facts, appointment_view
from shared.events import make_event
from shared.idempotency import StoredResponse
from shared.ids import new_id
from shared.jobs import Job, cancel_job, schedule_job
from shared.mongo import Database, Document, Session
from shared.outbox import Tx
from shared.principal import Principal, Role
from shared.problems import Conflict, NotFound

if TYPE_CHECKING:
    from services.appointments.context import Appointments

log = structlog.get_logger(__name__)

# timed jobs of this module: kind -> handler(ctx, job, tx); registered in handlers.py
JOBS: dict[str, Callable[[Appointments, Job, Tx], Awaitable[None]]] = {}
OFFER_EXPIRED_JOB = "waitlist.offer_expired"
CLOSE_JOB = "waitlist.close"
MAX_CANDIDATES = 50  # entries passed over per offer (booked meanwhile) before giving up


class EntryStatus(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"  # a slot is held for the entry until offer_expires_at
    BOOKED = "booked"
    EXPIRED = "expired"  # the offer was not confirmed in time
    LEFT = "left"
    CLOSED = "closed"  # the queue closed the evening before (or the session was cancelled)


WAITING, OFFERED = EntryStatus.WAITING.value, EntryStatus.OFFERED.value
ACTIVE = [WAITING, OFFERED]
OPEN, HELD = SlotStatus.OPEN.value, SlotStatus.HELD.value
COPIED = ("org_id", "department_id", "resource_id", "resource_name", "clinic_date", "session")


class JoinRequest(BaseModel):
    patient_id: str = Field(min_length=1, max_length=64)
    schedule_id: str = Field(min_length=1, max_length=200)
    channel: Channel | None = None
    reason: str | None = Field(None, max_length=200)  # staff joining on a patient's behalf


def offer_job_key(entry_id: str) -> str:
    return f"waitlist-offer:{entry_id}"


def close_job_key(schedule_id: str) -> str:
    return f"waitlist-close:{schedule_id}"


def to_ms(moment: datetime) -> datetime:
    """Cut to milliseconds, as BSON stores it: answers match what is read back later."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def becomes(status: EntryStatus, **fields: Any) -> Document:
    """The update that moves an entry to ``status`` (off the queue unless still active)."""
    active = status.value in ACTIVE
    return {"$set": {"status": status.value, "active": active, **fields}, "$inc": {"version": 1}}


def entry_not_found() -> NotFound:
    return NotFound(
        "waitlist_entry_not_found", "no such waitlist entry", detail_zh="候补记录不存在"
    )


def inactive(entry: Document) -> Conflict:
    return Conflict(
        "waitlist_entry_inactive",
        f"the waitlist entry is {entry['status']}",
        detail_zh="该候补已结束",
        extra={"current_status": entry["status"], "appointment_id": entry.get("appointment_id")},
    )


def not_confirmable(entry: Document, now: datetime) -> Conflict:
    """Why an entry holds no open offer to confirm."""
    status = entry["status"]
    if status == EntryStatus.EXPIRED or (status == OFFERED and entry["offer_expires_at"] <= now):
        return Conflict("offer_expired", "the offer has expired", detail_zh="候补号源确认已超时")
    if status == WAITING:
        return Conflict("no_offer", "no slot offered yet", detail_zh="暂未获得候补号源，请耐心等待")
    return inactive(entry)


def already_waiting(entry: Document | None) -> Conflict:
    return Conflict(
        "already_waiting",
        "already on the waitlist of this session",
        detail_zh="您已在该时段的候补队列中",
        extra={"entry_id": entry["_id"] if entry else None},
    )


def check_published(schedule: Document) -> None:
    if schedule["status"] != "published":
        raise Conflict("schedule_cancelled", "the session is cancelled", detail_zh="本次出诊已停诊")


def account_of(principal: Principal, patient: Document) -> str:
    if principal.subject in patient.get("account_ids", []):
        return principal.subject
    return str((patient.get("account_ids") or [""])[0])


def entry_view(entry: Document, position: int | None, timezone: str) -> dict[str, Any]:
    """An entry as its patient sees it; ``slot`` is the held slot of an open offer."""
    offer, slot = entry.get("offer"), None
    if offer is not None and entry["status"] == OFFERED:
        starts = offer["starts_at"]
        slot = {
            "id": offer["slot_id"],
            "number": offer["number"],
            "starts_at": starts.isoformat(),
            "starts_local": starts.astimezone(ZoneInfo(timezone)).isoformat(),
        }
    expires = entry.get("offer_expires_at")
    return {
        "id": entry["_id"],
        **{k: entry[k] for k in ("patient_id", "schedule_id", "department_name", *COPIED)},
        **{k: entry[k] for k in ("channel", "status")},
        "position": position,
        "joined_at": entry["joined_at"].isoformat(),
        "closes_at": entry["closes_at"].isoformat(),
        "offer_expires_at": expires.isoformat() if expires else None,
        "slot": slot,
        "appointment_id": entry.get("appointment_id"),
    }


async def remember(idempotency: Idempotency | None, view: dict[str, Any], s: Session) -> None:
    if idempotency is not None:
        stored = StoredResponse(201, view)
        await idempotency.keys.complete(idempotency.scope, idempotency.key, stored, session=s)


class Waitlist:
    def __init__(self, ctx: Appointments) -> None:
        self.ctx = ctx

    @property
    def db(self) -> Database:
        return self.ctx.runtime.db

    async def join(
        self,
        principal: Principal,
        request: JoinRequest,
        *,
        idempotency: Idempotency | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Join a session's line: only when the caller's channel can book nothing there."""
        now = to_ms(now or datetime.now(UTC))
        ctx = self.ctx
        patient = await ctx.patients.get_for(principal, request.patient_id)
        schedule = await ctx.schedules.get(request.schedule_id)
        check_published(schedule)
        policy = await ctx.policies.for_org(schedule["org_id"])
        day = date.fromisoformat(schedule["clinic_date"])
        rules.check_waitlist_open(policy, now=now, clinic_date=day)
        channel = channel_for(principal, request.channel)
        dep = schedule["department_id"]
        pools = rules.open_pools(
            policy, now=now, channel=channel, clinic_date=day, department_id=dep
        )
        rules.check_no_bookable_slot(await ctx.schedules.availability(schedule["_id"]), pools)
        entry: Document = {
            "_id": new_id(),
            "patient_id": patient["_id"],
            "account_id": account_of(principal, patient),
            "schedule_id": schedule["_id"],
            **{k: schedule[k] for k in COPIED},
            "department_name": (await ctx.catalog.department(dep))["name"],
            "channel": channel.value,
            "status": WAITING,
            "active": True,
            "joined_at": now,
            "joined_by": {"id": principal.subject, "role": principal.primary_role},
            "closes_at": to_ms(rules.waitlist_closes_at(policy, day)),
            "version": 1,
        }

        async def work(tx: Tx) -> dict[str, Any]:
            await self._check_patient(patient["_id"], schedule["_id"], policy, now, tx.session)
            try:
                await self.db[WAITLIST].insert_one(entry, session=tx.session)
            except DuplicateKeyError:  # the same patient joined at the same moment
                raise already_waiting(None) from None
            sid = schedule["_id"]
            await self._schedule(
                tx, CLOSE_JOB, entry["closes_at"], close_job_key(sid), schedule_id=sid
            )
            await ctx.runtime.audit.record(
                principal,
                "waitlist.join",
                patient_id=patient["_id"],
                resource=f"waitlist:{entry['_id']}",
                reason=request.reason,
                session=tx.session,
            )
            view = entry_view(entry, await self.position(entry, tx.session), policy.timezone)
            await remember(idempotency, view, tx.session)
            return view

        view = await ctx.runtime.outbox.transaction(work)
        log.info("waitlist.joined", entry_id=entry["_id"], schedule_id=schedule["_id"])
        return view

    async def _check_patient(
        self, patient_id: str, schedule_id: str, policy: BookingPolicy, now: datetime, s: Session
    ) -> None:
        record = await self.ctx.records.lock(patient_id, s)  # one patient's requests serialize
        banned = self.ctx.records.banned_until(record, policy, now)
        rules.check_not_banned(banned, now, policy.timezone)
        mine = {"patient_id": patient_id, "active": True}
        here = {**mine, "schedule_id": schedule_id}
        if await self.db[APPOINTMENTS].count_documents(here, session=s):
            raise Conflict(
                "duplicate_booking", "already booked in this session", detail_zh="您已预约该时段"
            )
        if (waiting := await self.db[WAITLIST].find_one(here, session=s)) is not None:
            raise already_waiting(waiting)
        active = await self.db[WAITLIST].count_documents(mine, session=s)
        rules.check_waitlist_limit(policy, active_entries=active)

    async def position(self, entry: Document, session: Session | None = None) -> int | None:
        """1 for the first in line; None once the entry is no longer waiting."""
        if entry["status"] != WAITING:
            return None
        ahead = {
            "schedule_id": entry["schedule_id"],
            "status": WAITING,
            "_id": {"$lt": entry["_id"]},
        }
        return await self.db[WAITLIST].count_documents(ahead, session=session) + 1

    async def owned(self, principal: Principal, entry_id: str) -> Document:
        """The entry, if the caller may act for its patient; anyone else's looks missing."""
        entry = await self.db[WAITLIST].find_one({"_id": entry_id})
        if entry is None:
            raise entry_not_found()
        if principal.is_staff or Role.SERVICE in principal.roles:
            return entry
        patient = await self.ctx.patients.get(entry["patient_id"])
        if principal.subject in patient.get("account_ids", []):
            return entry
        raise entry_not_found()

    async def leave(
        self,
        principal: Principal,
        entry_id: str,
        *,
        reason: str | None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Leave the line; an outstanding offer passes to the next in line."""
        now = now or datetime.now(UTC)
        entry = await self.owned(principal, entry_id)
        if entry["status"] not in ACTIVE:
            raise inactive(entry)
        policy = await self.ctx.policies.for_org(entry["org_id"])
        update = becomes(EntryStatus.LEFT, left_at=now, left_by=principal.subject)

        async def work(tx: Tx) -> dict[str, Any]:
            active = {"_id": entry_id, "status": {"$in": ACTIVE}}
            before = await self.db[WAITLIST].find_one_and_update(active, update, session=tx.session)
            if before is None:  # confirmed, expired or left since we looked
                raise inactive(await self._reread(tx, entry_id))
            if before["status"] == OFFERED:
                await cancel_job(self.db, tx.session, offer_job_key(entry_id))
                await self._hand_on(tx, before, now)
            await self.ctx.runtime.audit.record(
                principal,
                "waitlist.leave",
                patient_id=entry["patient_id"],
                resource=f"waitlist:{entry_id}",
                reason=reason,
                session=tx.session,
            )
            return entry_view({**before, **update["$set"]}, None, policy.timezone)

        view = await self.ctx.runtime.outbox.transaction(work)
        log.info("waitlist.left", entry_id=entry_id, schedule_id=entry["schedule_id"])
        return view

    async def _reread(self, tx: Tx, entry_id: str) -> Document:
        entry = await self.db[WAITLIST].find_one({"_id": entry_id}, session=tx.session)
        if entry is None:
            raise entry_not_found()
        return entry

    async def confirm(
        self,
        principal: Principal,
        entry_id: str,
        *,
        idempotency: Idempotency | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Book the slot held for this entry like a booking, but without Redis admission."""
        now = now or datetime.now(UTC)
        ctx = self.ctx
        entry = await self.owned(principal, entry_id)
        if entry["status"] != OFFERED or entry["offer_expires_at"] <= now:
            raise not_confirmable(entry, now)
        schedule = await ctx.schedules.get(entry["schedule_id"])
        check_published(schedule)
        policy = await ctx.policies.for_org(schedule["org_id"])
        patient = await ctx.patients.get(entry["patient_id"])

        async def work(tx: Tx) -> dict[str, Any]:
            session = tx.session
            record = await ctx.records.lock(patient["_id"], session)
            banned = ctx.records.banned_until(record, policy, now)
            rules.check_not_banned(banned, now, policy.timezone)
            await ctx.booking._check_limits(patient["_id"], schedule, policy, now, session)
            appointment_id = new_id()
            taken = await self.db[WAITLIST].find_one_and_update(
                {"_id": entry_id, "status": OFFERED, "offer_expires_at": {"$gt": now}},
                becomes(EntryStatus.BOOKED, appointment_id=appointment_id, booked_at=now),
                session=session,
            )
            if taken is None:
                raise not_confirmable(await self._reread(tx, entry_id), now)
            slot = await self.db[SLOTS].find_one_and_update(
                {"_id": taken["offer"]["slot_id"], "status": HELD, "held_for": entry_id},
                {
                    "$set": {"status": SlotStatus.BOOKED.value, "appointment_id": appointment_id},
                    "$unset": {"held_for": "", "held_until": ""},
                },
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if slot is None:  # the hold is gone (session cancelled): nothing left to book
                raise not_confirmable({**taken, "status": EntryStatus.EXPIRED.value}, now)
            resource_id = {"_id": schedule["resource_id"]}
            resource = await self.db[RESOURCES].find_one(resource_id, session=session) or {}
            appointment = {
                "_id": appointment_id,
                "patient_id": patient["_id"],
                "account_id": account_of(principal, patient),
                **{k: schedule[k] for k in (*COPIED, "resource_kind", "fee_cents")},
                "department_name": taken["department_name"],
                "title": resource.get("title"),
                "preparation": resource.get("preparation"),
                "schedule_id": schedule["_id"],
                "slot_id": slot["_id"],
                **{k: slot[k] for k in ("number", "starts_at", "ends_at", "pool")},
                "channel": taken["channel"],
                "status": AppointmentStatus.BOOKED.value,
                "active": True,
                "booked_by": {"id": principal.subject, "role": principal.primary_role},
                "booked_on": rules.clinic_date_of(now, policy.timezone).isoformat(),
                "referral_id": None,
                "waitlist_id": entry_id,
                "created_at": now,
                "version": 1,
            }
            await self.db[APPOINTMENTS].insert_one(appointment, session=session)
            booked = AppointmentBooked(
                **appointment_facts(appointment), booked_by_role=principal.primary_role
            )
            tx.emit(make_event(booked, source="appointments", subject=patient["_id"]))
            await cancel_job(self.db, session, offer_job_key(entry_id))
            await ctx.runtime.audit.record(
                principal,
                "appointment.book",
                patient_id=patient["_id"],
                resource=f"appointment:{appointment_id}",
                reason=f"waitlist:{entry_id}",
                session=session,
            )
            view = appointment_view(appointment, policy.timezone)
            await remember(idempotency, view, session)
            tx.after_commit.append(lambda: self._guard(schedule["_id"], patient["_id"]))
            return view

        view = await ctx.runtime.outbox.transaction(work)
        log.info("waitlist.confirmed", entry_id=entry_id, appointment_id=view["id"])
        return view

    # --- slots passing through the queue (inside the caller's transaction) ---------------

    async def offer_freed_slot(self, tx: Tx, appointment: Document, slot: Document) -> bool:
        """Offer a slot freed by a cancellation to the waitlist; True if it was offered."""
        sid = appointment["schedule_id"]
        waiting = {"schedule_id": sid, "status": WAITING}
        if await self.db[WAITLIST].find_one(waiting, {"_id": 1}, session=tx.session) is None:
            return False
        schedule = await self.db[SCHEDULES].find_one({"_id": sid}, session=tx.session)
        if schedule is None:
            return False
        policy = await self.ctx.policies.for_org(schedule["org_id"])
        now = datetime.now(UTC)
        return await self._offer_next(tx, schedule, policy, slot, now, appointment["patient_id"])

    async def _offer_next(
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
            or not rules.may_offer_waitlist(policy, now=now, clinic_date=day, slot_starts_at=starts)
        ):
            return False
        channels = [c.value for c in rules.waitlist_channels_for(Pool(slot["pool"]))]
        query = {"schedule_id": schedule["_id"], "status": WAITING, "channel": {"$in": channels}}
        query["patient_id"] = {"$ne": skip_patient}  # not back to the patient who gave it up
        expires = to_ms(rules.waitlist_offer_expires_at(policy, now))
        offer = {"slot_id": slot["_id"], **{k: slot[k] for k in ("number", "starts_at", "pool")}}
        db, session = self.db, tx.session
        for _ in range(MAX_CANDIDATES):
            candidate = await db[WAITLIST].find_one(query, sort=[("_id", 1)], session=session)
            if candidate is None:
                return False
            if await self._booked_meanwhile(tx, candidate, now):
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
            await self._schedule(tx, OFFER_EXPIRED_JOB, expires, offer_job_key(eid), entry_id=eid)
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

    async def _booked_meanwhile(self, tx: Tx, entry: Document, now: datetime) -> bool:
        """A waiting patient who has booked this session since leaves the line as booked."""
        here = {"patient_id": entry["patient_id"], "schedule_id": entry["schedule_id"]}
        found = await self.db[APPOINTMENTS].find_one({**here, "active": True}, session=tx.session)
        if found is None:
            return False
        update = becomes(EntryStatus.BOOKED, appointment_id=found["_id"], booked_at=now)
        waiting = {"_id": entry["_id"], "status": WAITING}
        await self.db[WAITLIST].update_one(waiting, update, session=tx.session)
        return True

    async def _hand_on(self, tx: Tx, entry: Document, now: datetime) -> bool:
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
        policy = await self.ctx.policies.for_org(schedule["org_id"])
        if await self._offer_next(tx, schedule, policy, slot, now):
            return True
        if not slot.get("extra"):
            sid, pool, slot_id = slot["schedule_id"], slot["pool"], slot["_id"]
            tx.after_commit.append(lambda: self._reopen(sid, pool, slot_id))
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
            await self._schedule(tx, OFFER_EXPIRED_JOB, due, key, entry_id=entry_id)
            return False
        expired = await self.db[WAITLIST].find_one_and_update(
            {"_id": entry_id, "status": OFFERED},
            becomes(EntryStatus.EXPIRED, expired_at=now),
            session=tx.session,
        )
        if expired is None:
            return False
        log.info("waitlist.offer_expired", entry_id=entry_id, schedule_id=entry["schedule_id"])
        await self._hand_on(tx, expired, now)
        return True

    async def close_queue(self, tx: Tx, schedule_id: str, now: datetime) -> int:
        """At the closing time waiting entries close; offers stand until confirmed or lapsed.

        For a cancelled session (停诊) every active entry closes at once: call this inside
        the cancelling transaction (its held slots are cancelled with the others).
        """
        schedule = await self.db[SCHEDULES].find_one({"_id": schedule_id}, session=tx.session)
        if schedule is None:
            return 0
        policy = await self.ctx.policies.for_org(schedule["org_id"])
        closes = rules.waitlist_closes_at(policy, date.fromisoformat(schedule["clinic_date"]))
        cancelled = schedule["status"] != "published"
        if now < closes and not cancelled:  # the policy moved the closing time later
            key = close_job_key(schedule_id)
            await self._schedule(tx, CLOSE_JOB, closes, key, schedule_id=schedule_id)
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

    async def _schedule(
        self, tx: Tx, kind: str, due_at: datetime, key: str, **payload: str
    ) -> None:
        await schedule_job(self.db, tx.session, kind=kind, due_at=due_at, payload=payload, key=key)

    # --- Redis admission, after the commit ----------------------------------------------

    async def _reopen(self, schedule_id: str, pool: str, slot_id: str) -> None:
        try:
            await self.ctx.gate.release(schedule_id, "", pool, slot_id)
        except RedisError as exc:  # Redis stays behind Mongo until the next rebuild
            log.warning("waitlist.reopen_failed", slot_id=slot_id, error=str(exc))

    async def _guard(self, schedule_id: str, patient_id: str) -> None:
        """The patient joins the session's duplicate guard: no second number by booking."""
        gate = self.ctx.gate
        try:
            await gate.redis.sadd(gate._keys(schedule_id, [])[1], patient_id)
        except RedisError as exc:  # rebuilt from Mongo (active bookings) with the state
            log.warning("waitlist.guard_failed", schedule_id=schedule_id, error=str(exc))


async def _offer_expired(ctx: Appointments, job: Job, tx: Tx) -> None:
    await ctx.waitlist.expire_offer(tx, str(job.payload["entry_id"]), datetime.now(UTC))


async def _close(ctx: Appointments, job: Job, tx: Tx) -> None:
    await ctx.waitlist.close_queue(tx, str(job.payload["schedule_id"]), datetime.now(UTC))


JOBS[OFFER_EXPIRED_JOB] = _offer_expired
JOBS[CLOSE_JOB] = _close
