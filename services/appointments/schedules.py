"""Schedules and their numbered slots: bulk publishing, pools, availability, admission state."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime
from typing import Any

from redis.exceptions import RedisError

from services.appointments.admission import AdmissionGate
from services.appointments.admission_cache import AdmissionCache
from services.appointments.catalog import Catalog
from services.appointments.domain import booking_rules, change_rules
from services.appointments.domain.models import ClinicType, Pool, SlotStatus
from services.appointments.events import SchedulePublished
from services.appointments.policies import Policies
from services.appointments.schedule_requests import ScheduleIn, refusal, resource_key, schedule_id
from services.appointments.store import APPOINTMENTS, SCHEDULES, SLOTS
from services.appointments.views import slot_view
from shared.events import make_event
from shared.jobs import schedule_job
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.problems import Conflict, FieldError, NotFound, Unprocessable

ALL_POOLS = [p.value for p in Pool]
POOL_RETURN_JOB = "schedule.pool_return"
NO_SHOW_JOB = "schedule.no_show_sweep"


class Schedules:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        catalog: Catalog,
        policies: Policies,
        gate: AdmissionGate,
        cache: AdmissionCache,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.catalog = catalog
        self.policies = policies
        self.gate = gate
        self.cache = cache

    async def invalidate(self, sid: str) -> None:
        """The session changed: booking attempts read it from Mongo again."""
        with contextlib.suppress(RedisError):  # the cached copy expires by itself
            await self.cache.schedule_changed(sid)

    async def publish(
        self, items: list[ScheduleIn], now: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Create schedules with their slots and pools; an identical re-publish is a no-op.

        The whole batch is checked before anything is written, so a refusal leaves it all
        unpublished: a session that has already ended (new, or grown) is a 422
        ``session_in_past`` naming its items; a refused change of a published session is
        its 409 (``schedule_times_changed``, ``schedule_cancelled``, ...).
        """
        now = now or datetime.now(UTC)
        resources = {resource_key(i): await self.catalog.resource(resource_key(i)) for i in items}
        await self._check_batch(items, resources, now)
        results = []
        for item in items:
            resource = resources[resource_key(item)]
            kind = ClinicType(item.clinic_type or resource["clinic_type"])
            policy = await self.policies.for_org(item.org_id)
            referral = booking_rules.referral_slots(
                kind,
                item.slot_count,
                policy.pool_shares.referral,
                policy.referral_expert_min_fraction,
            )
            results.append(await self._publish_one(item, resource, kind, referral))
        return results

    async def _check_batch(
        self, items: list[ScheduleIn], resources: dict[str, Document], now: datetime
    ) -> None:
        errors: list[FieldError] = []
        for n, item in enumerate(items):
            sid = schedule_id(resources[resource_key(item)]["_id"], item.clinic_date, item.session)
            existing = await self.db[SCHEDULES].find_one({"_id": sid})
            if existing is not None:
                if refused := refusal(existing, item):
                    raise refused
                if item.slot_count == existing["slot_count"]:
                    continue  # re-posting a published session: a no-op, even after it ended
            policy = await self.policies.for_org(item.org_id)
            ends = booking_rules.local_to_utc(item.clinic_date, item.ends, policy.timezone)
            if ends > now:
                continue
            errors.append(
                FieldError(
                    field=f"body.{n}.ends",
                    message=f"the session {sid} ended at {ends.isoformat()}",
                    type="session_in_past",
                )
            )
        if errors:
            raise Unprocessable(
                "session_in_past",
                "sessions that have already ended cannot be published; nothing was published",
                errors=errors,
            )

    async def _publish_one(
        self, item: ScheduleIn, resource: Document, kind: ClinicType, referral: int
    ) -> dict[str, Any]:
        sid = schedule_id(resource["_id"], item.clinic_date, item.session)
        existing = await self.db[SCHEDULES].find_one({"_id": sid})
        if existing is not None:
            return await self._change(existing, item)
        policy = await self.policies.for_org(item.org_id)
        windows = booking_rules.slot_windows(
            item.clinic_date, item.starts, item.ends, item.slot_count, policy.timezone
        )
        pools = booking_rules.assign_pools(item.slot_count, referral, policy.pool_shares)
        counts = {p.value: pools.count(p) for p in Pool}
        schedule = {
            "_id": sid,
            "org_id": item.org_id,
            "department_id": resource["department_id"],
            "resource_id": resource["_id"],
            "resource_name": resource["name"],
            "resource_kind": resource["kind"],
            "clinic_type": kind.value,
            "clinic_date": item.clinic_date.isoformat(),
            "session": item.session.value,
            "starts_local": item.starts.isoformat(),
            "ends_local": item.ends.isoformat(),
            "starts_at": windows[0][1],
            "ends_at": windows[-1][2],
            "slot_count": item.slot_count,
            "pools": counts,
            "status": "published",
            "fee_cents": resource.get("fee_cents", 0),
            "published_at": datetime.now(UTC),
        }
        slots = [
            {
                "_id": f"{sid}.{n}",
                "schedule_id": sid,
                "number": n,
                "starts_at": start,
                "ends_at": end,
                "pool": pool.value,
                "status": SlotStatus.OPEN.value,
                "extra": False,
            }
            for (n, start, end), pool in zip(windows, pools, strict=True)
        ]

        async def work(tx: Tx) -> None:
            await self.db[SCHEDULES].insert_one(schedule, session=tx.session)
            await self.db[SLOTS].insert_many(slots, session=tx.session)
            await schedule_job(
                self.db,
                tx.session,
                kind=POOL_RETURN_JOB,
                due_at=booking_rules.pool_return_at(policy, schedule["starts_at"]),
                payload={"schedule_id": sid},
                key=f"pool-return:{sid}",
            )
            await schedule_job(
                self.db,
                tx.session,
                kind=NO_SHOW_JOB,
                due_at=change_rules.checkin_window(
                    policy, schedule["starts_at"], schedule["ends_at"]
                )[1],
                payload={"schedule_id": sid},
                key=f"no-show:{sid}",
            )
            tx.emit(
                make_event(
                    SchedulePublished(
                        schedule_id=sid,
                        org_id=item.org_id,
                        department_id=resource["department_id"],
                        resource_id=resource["_id"],
                        clinic_date=item.clinic_date,
                        session=item.session.value,
                        slot_count=item.slot_count,
                        pools=counts,
                    ),
                    source="appointments",
                    subject=sid,
                )
            )

        await self.outbox.transaction(work)
        await self.invalidate(sid)
        await self.sync_admission(sid, force=True)
        return {"schedule_id": sid, "status": "published", "pools": counts}

    async def _change(self, existing: Document, item: ScheduleIn) -> dict[str, Any]:
        """A re-published session: identical is a no-op; more slots adds numbers (public)."""
        if refused := refusal(existing, item):
            raise refused
        if item.slot_count == existing["slot_count"]:
            return {"schedule_id": existing["_id"], "status": "unchanged"}
        return await self._grow(existing, item)

    async def _grow(self, existing: Document, item: ScheduleIn) -> dict[str, Any]:
        sid, old = existing["_id"], existing["slot_count"]
        policy = await self.policies.for_org(existing["org_id"])
        windows = booking_rules.slot_windows(
            item.clinic_date, item.starts, item.ends, item.slot_count, policy.timezone
        )
        added = [
            {
                "_id": f"{sid}.{n}",
                "schedule_id": sid,
                "number": n,
                "starts_at": start,
                "ends_at": end,
                "pool": Pool.PUBLIC.value,
                "status": SlotStatus.OPEN.value,
                "extra": False,
            }
            for n, start, end in windows[old:]
        ]
        pools = {
            **existing["pools"],
            Pool.PUBLIC.value: existing["pools"].get(Pool.PUBLIC.value, 0) + len(added),
        }

        async def work(tx: Tx) -> None:
            grown = await self.db[SCHEDULES].update_one(
                {"_id": sid, "slot_count": old, "status": "published"},
                {
                    "$set": {
                        "slot_count": item.slot_count,
                        "pools": pools,
                        "changed_at": datetime.now(UTC),
                    }
                },
                session=tx.session,
            )
            if grown.modified_count != 1:
                raise Conflict("schedule_changed", "the session changed meanwhile; try again")
            await self.db[SLOTS].insert_many(added, session=tx.session)
            tx.emit(
                make_event(
                    SchedulePublished(
                        schedule_id=sid,
                        org_id=existing["org_id"],
                        department_id=existing["department_id"],
                        resource_id=existing["resource_id"],
                        clinic_date=item.clinic_date,
                        session=existing["session"],
                        slot_count=item.slot_count,
                        pools=pools,
                    ),
                    source="appointments",
                    subject=sid,
                )
            )
            tx.after_commit.append(lambda: self._admit_new(sid, [d["_id"] for d in added]))
            tx.after_commit.append(lambda: self.invalidate(sid))

        await self.outbox.transaction(work)
        return {"schedule_id": sid, "status": "grown", "added": len(added), "pools": pools}

    async def _admit_new(self, sid: str, slot_ids: list[str]) -> None:
        with contextlib.suppress(RedisError):  # else rebuilt from Mongo when next needed
            await self.gate.add_slots(sid, Pool.PUBLIC.value, slot_ids)

    async def get(self, sid: str) -> Document:
        doc = await self.db[SCHEDULES].find_one({"_id": sid})
        if doc is None:
            raise NotFound("schedule_not_found", "no such schedule", detail_zh="排班不存在")
        return doc

    async def slots(self, sid: str) -> list[dict[str, Any]]:
        """A session's numbered slots in number order (404 for an unknown session)."""
        await self.get(sid)
        docs = await self.db[SLOTS].find({"schedule_id": sid}).sort("number", 1).to_list(500)
        return [slot_view(d) for d in docs]

    async def snapshot(self, sid: str) -> tuple[dict[str, list[str]], list[str]]:
        """Open slot ids per pool (in number order) and the patients holding a booking."""
        open_slots: dict[str, list[str]] = {p.value: [] for p in Pool}
        cursor = (
            self.db[SLOTS]
            .find({"schedule_id": sid, "status": "open", "extra": False}, {"pool": 1})
            .sort("number", 1)
        )
        async for slot in cursor:
            open_slots[slot["pool"]].append(slot["_id"])
        patients = await self.db[APPOINTMENTS].distinct(
            "patient_id", {"schedule_id": sid, "active": True}
        )
        return open_slots, [str(p) for p in patients]

    async def sync_admission(self, sid: str, *, force: bool = False) -> None:
        """(Re)build the schedule's admission state in Redis from Mongo."""
        open_slots, patients = await self.snapshot(sid)
        with contextlib.suppress(RedisError):  # else initialized on the next booking attempt
            await self.gate.initialize(sid, open_slots, patients, force=force)

    async def availability(self, sid: str) -> dict[str, int]:
        remaining = None
        with contextlib.suppress(RedisError):
            remaining = await self.gate.remaining(sid, ALL_POOLS)
        if remaining is None:
            open_slots, _ = await self.snapshot(sid)
            remaining = {pool: len(ids) for pool, ids in open_slots.items()}
        return remaining

    async def search(
        self,
        *,
        org_id: str,
        department_id: str | None,
        resource_id: str | None,
        date_from: date,
        date_to: date,
        limit: int = 200,
    ) -> list[Document]:
        query: dict[str, Any] = {
            "org_id": org_id,
            "status": "published",
            "clinic_date": {"$gte": date_from.isoformat(), "$lte": date_to.isoformat()},
        }
        if department_id:
            query["department_id"] = department_id
        if resource_id:
            query["resource_id"] = resource_id
        return (
            await self.db[SCHEDULES]
            .find(query)
            .sort([("clinic_date", 1), ("starts_at", 1)])
            .to_list(limit)
        )

    async def return_pools(self, sid: str, tx: Tx) -> int:
        """Unused reserved slots go back to the public pool (job at start - 24 h)."""
        query = {"schedule_id": sid, "status": "open", "pool": {"$ne": Pool.PUBLIC.value}}
        reserved = await self.db[SLOTS].find(query, {"pool": 1}, session=tx.session).to_list(None)
        moves = [(str(slot["pool"]), str(slot["_id"])) for slot in reserved]
        result = await self.db[SLOTS].update_many(
            {**query, "_id": {"$in": [slot_id for _, slot_id in moves]}},
            {"$set": {"pool": Pool.PUBLIC.value, "returned": True}},
            session=tx.session,
        )

        async def move_in_admission() -> None:
            with contextlib.suppress(RedisError):  # a rebuild from Mongo repairs it
                await self.gate.move(sid, Pool.PUBLIC.value, moves)

        tx.after_commit.append(move_in_admission)
        tx.after_commit.append(lambda: self.invalidate(sid))
        return result.modified_count
