"""Waitlist (候补): join a full session; a freed slot is offered to the first in line.

An entry is ``waiting`` until a cancellation frees a slot its channel may use: the slot is
then ``held`` for it and the entry ``offered`` until ``offer_expires_at``. Confirming books
the held slot like a normal booking (it never goes through Redis admission); an offer that
expires or is given up passes to the next in line, else the slot is bookable again. Every
change is a conditional update inside one outbox transaction, so job retries and races
between confirm, leave and expiry never apply twice.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import structlog
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.appointments.booking import channel_for
from services.appointments.booking_common import (
    Idempotency,
    account_of,
    check_limits,
    new_appointment,
    remember,
)
from services.appointments.catalog import Catalog
from services.appointments.domain import booking_rules, penalty_rules, waitlist_rules
from services.appointments.domain.models import Channel, SlotStatus
from services.appointments.domain.policy import BookingPolicy
from services.appointments.events import AppointmentBooked
from services.appointments.patients import Patients
from services.appointments.policies import Policies
from services.appointments.records import PatientRecords
from services.appointments.schedules import Schedules
from services.appointments.store import APPOINTMENTS, SLOTS, WAITLIST
from services.appointments.views import appointment_facts, appointment_view
from services.appointments.waitlist_entries import (
    ACTIVE,
    CLOSE_JOB,
    COPIED,
    HELD,
    OFFERED,
    WAITING,
    EntryStatus,
    JoinRequest,
    already_waiting,
    becomes,
    check_published,
    close_job_key,
    entry_not_found,
    entry_view,
    inactive,
    not_confirmable,
    offer_job_key,
    to_ms,
)
from services.appointments.waitlist_offers import WaitlistOffers
from shared.audit import AuditLog
from shared.events import make_event
from shared.ids import new_id
from shared.jobs import cancel_job
from shared.mongo import Database, Document, Session
from shared.outbox import Outbox, Tx
from shared.principal import Principal, Role
from shared.problems import Conflict
from shared.scoping import ensure_org, may_see_org, other_org

log = structlog.get_logger(__name__)


class Waitlist:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        catalog: Catalog,
        patients: Patients,
        schedules: Schedules,
        policies: Policies,
        records: PatientRecords,
        audit: AuditLog,
        offers: WaitlistOffers,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.catalog = catalog
        self.patients = patients
        self.schedules = schedules
        self.policies = policies
        self.records = records
        self.audit = audit
        self.offers = offers

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
        schedule = await self.schedules.get(request.schedule_id)
        if principal.is_staff:
            ensure_org(principal, schedule["org_id"])
        patient = await self.patients.get_for(
            principal, request.patient_id, at_org=schedule["org_id"]
        )
        check_published(schedule)
        policy = await self.policies.for_org(schedule["org_id"])
        day = date.fromisoformat(schedule["clinic_date"])
        waitlist_rules.check_waitlist_open(policy, now=now, clinic_date=day)
        channel = channel_for(principal, request.channel)
        dep = schedule["department_id"]
        pools = booking_rules.open_pools(
            policy, now=now, channel=channel, clinic_date=day, department_id=dep
        )
        waitlist_rules.check_no_bookable_slot(
            await self.schedules.availability(schedule["_id"]), pools
        )
        entry: Document = {
            "_id": new_id(),
            "patient_id": patient["_id"],
            "account_id": account_of(principal, patient),
            "schedule_id": schedule["_id"],
            **{k: schedule[k] for k in COPIED},
            "department_name": (await self.catalog.department(dep))["name"],
            "channel": channel.value,
            "status": WAITING,
            "active": True,
            "joined_at": now,
            "joined_by": {"id": principal.subject, "role": principal.primary_role},
            "closes_at": to_ms(waitlist_rules.waitlist_closes_at(policy, day)),
            "version": 1,
        }

        async def work(tx: Tx) -> dict[str, Any]:
            await self._check_patient(patient["_id"], schedule, policy, now, tx.session)
            try:
                await self.db[WAITLIST].insert_one(entry, session=tx.session)
            except DuplicateKeyError:  # the same patient joined at the same moment
                raise already_waiting(None) from None
            sid = schedule["_id"]
            await self.offers.schedule_job_at(
                tx, CLOSE_JOB, entry["closes_at"], close_job_key(sid), schedule_id=sid
            )
            await self.audit.record(
                principal,
                "waitlist.join",
                patient_id=patient["_id"],
                resource=f"waitlist:{entry['_id']}",
                reason=request.reason,
                session=tx.session,
            )
            view = entry_view(entry, await self.position(entry, tx.session), policy.timezone)
            await remember(idempotency, 201, view, tx.session)
            return view

        view = await self.outbox.transaction(work)
        log.info("waitlist.joined", entry_id=entry["_id"], schedule_id=schedule["_id"])
        return view

    async def _check_patient(
        self, patient_id: str, schedule: Document, policy: BookingPolicy, now: datetime, s: Session
    ) -> None:
        schedule_id = schedule["_id"]
        record = await self.records.lock(patient_id, s)  # one patient's requests serialize
        banned = self.records.banned_until(record, policy, now, schedule["org_id"])
        penalty_rules.check_not_banned(banned, now, policy.timezone)
        mine = {"patient_id": patient_id, "active": True}
        here = {**mine, "schedule_id": schedule_id}
        if await self.db[APPOINTMENTS].count_documents(here, session=s):
            raise Conflict(
                "duplicate_booking", "already booked in this session", detail_zh="您已预约该时段"
            )
        if (waiting := await self.db[WAITLIST].find_one(here, session=s)) is not None:
            raise already_waiting(waiting)
        active = await self.db[WAITLIST].count_documents(mine, session=s)
        waitlist_rules.check_waitlist_limit(policy, active_entries=active)

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

    async def entries_of(
        self,
        patient_ids: list[str],
        *,
        status: str | None,
        limit: int,
        org_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """The patients' entries (of one status, if given), newest first."""
        query: dict[str, Any] = {"patient_id": {"$in": patient_ids}}
        if org_id is not None:  # staff see their organization's entries only
            query["org_id"] = org_id
        if status is not None:
            query["status"] = status
        docs = await self.db[WAITLIST].find(query).sort("_id", -1).to_list(limit)
        items = []
        for doc in docs:
            policy = await self.policies.for_org(doc["org_id"])
            items.append(entry_view(doc, await self.position(doc), policy.timezone))
        return items

    async def owned(self, principal: Principal, entry_id: str) -> Document:
        """The entry, if the caller may act for its patient; anyone else's looks missing."""
        entry = await self.db[WAITLIST].find_one({"_id": entry_id})
        if entry is None:
            raise entry_not_found()
        if principal.is_staff or Role.SERVICE in principal.roles:
            if may_see_org(principal, entry["org_id"]):
                return entry
            raise other_org()  # refused and audited
        patient = await self.patients.get(entry["patient_id"])
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
        policy = await self.policies.for_org(entry["org_id"])
        update = becomes(EntryStatus.LEFT, left_at=now, left_by=principal.subject)

        async def work(tx: Tx) -> dict[str, Any]:
            active = {"_id": entry_id, "status": {"$in": ACTIVE}}
            before = await self.db[WAITLIST].find_one_and_update(active, update, session=tx.session)
            if before is None:  # confirmed, expired or left since we looked
                raise inactive(await self._reread(tx, entry_id))
            if before["status"] == OFFERED:
                await cancel_job(self.db, tx.session, offer_job_key(entry_id))
                await self.offers.hand_on(tx, before, now)
            await self.audit.record(
                principal,
                "waitlist.leave",
                patient_id=entry["patient_id"],
                resource=f"waitlist:{entry_id}",
                reason=reason,
                session=tx.session,
            )
            return entry_view({**before, **update["$set"]}, None, policy.timezone)

        view = await self.outbox.transaction(work)
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
        entry = await self.owned(principal, entry_id)
        if entry["status"] != OFFERED or entry["offer_expires_at"] <= now:
            raise not_confirmable(entry, now)
        schedule = await self.schedules.get(entry["schedule_id"])
        check_published(schedule)
        policy = await self.policies.for_org(schedule["org_id"])
        patient = await self.patients.get(entry["patient_id"])

        async def work(tx: Tx) -> dict[str, Any]:
            session = tx.session
            record = await self.records.lock(patient["_id"], session)
            banned = self.records.banned_until(record, policy, now, schedule["org_id"])
            penalty_rules.check_not_banned(banned, now, policy.timezone)
            await check_limits(self.db, patient["_id"], schedule, policy, now, session)
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
            appointment = await new_appointment(
                self.db,
                self.catalog,
                session,
                appointment_id=appointment_id,
                principal=principal,
                patient=patient,
                schedule=schedule,
                slot=slot,
                channel=Channel(taken["channel"]),
                policy=policy,
                now=now,
                waitlist_id=entry_id,
            )
            await self.db[APPOINTMENTS].insert_one(appointment, session=session)
            booked = AppointmentBooked(
                **appointment_facts(appointment), booked_by_role=principal.primary_role
            )
            tx.emit(make_event(booked, source="appointments", subject=patient["_id"]))
            await cancel_job(self.db, session, offer_job_key(entry_id))
            await self.audit.record(
                principal,
                "appointment.book",
                patient_id=patient["_id"],
                resource=f"appointment:{appointment_id}",
                reason=f"waitlist:{entry_id}",
                session=session,
            )
            view = appointment_view(appointment, policy.timezone)
            await remember(idempotency, 201, view, session)
            tx.after_commit.append(lambda: self.offers.guard(schedule["_id"], patient["_id"]))
            return view

        view = await self.outbox.transaction(work)
        log.info("waitlist.confirmed", entry_id=entry_id, appointment_id=view["id"])
        return view

    async def offer_freed_slot(self, tx: Tx, appointment: Document, slot: Document) -> bool:
        """Offer a slot freed by a cancellation or a move to the first in line."""
        return await self.offers.offer_freed_slot(tx, appointment, slot)

    async def expire_offer(self, tx: Tx, entry_id: str, now: datetime) -> bool:
        return await self.offers.expire_offer(tx, entry_id, now)

    async def close_queue(self, tx: Tx, schedule_id: str, now: datetime) -> int:
        return await self.offers.close_queue(tx, schedule_id, now)
