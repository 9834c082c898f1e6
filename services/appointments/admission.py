"""Booking admission in Redis: capacity, the per-patient guard and leases, one script a call.

At slot release thousands of requests arrive for a few hundred slots. Each request runs
one Lua script per schedule (:mod:`services.appointments.admission_scripts`) that refuses
a patient already admitted to that session and hands out one open slot id from the first
pool (of those the channel may use) that has any left. Admitted requests therefore target
distinct slots and do not collide in Mongo, which stays the source of truth: the slot is
claimed there with a conditional update. When Redis loses its keys (restart, eviction),
the next request finds the schedule uninitialized and the service rebuilds it from Mongo.

A booking's admission is *leased* (docs/adr/0004): it records the slot, the replica that
holds it, its expiry and the request's idempotency key. The booking settles the lease once
Mongo committed; a request that dies first leaves a lease that a retry with the same
``Idempotency-Key`` takes over, and that :mod:`services.appointments.admission_leases`
otherwise reconciles against Mongo when it expires or its replica is gone. With a
waiting-room capacity, a request finds the gate ``busy`` while that many admissions are in
flight or tickets are waiting (:mod:`services.appointments.waiting_room`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from redis.asyncio import Redis

from services.appointments import admission_scripts as lua
from services.appointments.attempt_limits import AttemptPlan
from shared.mongo import Document
from shared.ratelimit import Decision, gcra_decision

SEPARATOR = "\x1f"  # between schedule id and patient id in the lease index


class Outcome(StrEnum):
    ADMITTED = "admitted"
    DUPLICATE = "duplicate"
    LEASED = "leased"  # admitted earlier, not settled yet
    LIMITED = "limited"  # over the patient's attempt limits (counted in the same script)
    BUSY = "busy"  # the waiting room takes the request
    SOLD_OUT = "sold_out"
    UNINITIALIZED = "uninitialized"


@dataclass(frozen=True)
class Lease:
    """An admission in flight: ``raw`` is how Redis holds it (compared before changes)."""

    slot_id: str
    pool: str
    expires_ms: int
    owner: str
    idempotency: str
    raw: str

    @classmethod
    def parse(cls, raw: str) -> Lease:
        slot_id, pool, expires, owner, idempotency = raw.split("|", 4)
        return cls(slot_id, pool, int(expires), owner, idempotency, raw)

    @staticmethod
    def format(slot_id: str, pool: str, expires_ms: int, owner: str, idempotency: str) -> str:
        return f"{slot_id}|{pool}|{expires_ms}|{owner}|{idempotency}"


@dataclass(frozen=True)
class LeaseTerms:
    """What an admission's lease records: how long, which replica, which request."""

    milliseconds: int
    owner: str
    idempotency: str = ""


@dataclass(frozen=True)
class Admission:
    outcome: Outcome
    pool: str | None = None
    slot_id: str | None = None
    lease: Lease | None = None
    in_flight: int = 0
    limited: Decision | None = None  # the refusing attempt limit, when LIMITED
    existing: Document | None = None  # this request's own booking, found when DUPLICATE


class AdmissionGate:
    def __init__(self, redis: Redis, prefix: str = "") -> None:
        self.redis = redis
        self.prefix = prefix
        self.lease_index = f"{prefix}adm:leases"
        self._admit = redis.register_script(lua.ADMIT)
        self._release = redis.register_script(lua.RELEASE)
        self._settle = redis.register_script(lua.SETTLE)
        self._reclaim = redis.register_script(lua.RECLAIM)
        self._take_over = redis.register_script(lua.TAKE_OVER)
        self._initialize = redis.register_script(lua.INITIALIZE)
        self._add = redis.register_script(lua.ADD)
        self._move = redis.register_script(lua.MOVE)

    def tag(self, schedule_id: str) -> str:
        return f"{self.prefix}adm:{{{schedule_id}}}"  # one hash slot per schedule

    def _keys(self, schedule_id: str, pools: list[str]) -> list[str]:
        tag = self.tag(schedule_id)
        return [f"{tag}:state", f"{tag}:patients", *(f"{tag}:pool:{p}" for p in pools)]

    def leases_key(self, schedule_id: str) -> str:
        return f"{self.tag(schedule_id)}:leases"

    def queue_key(self, schedule_id: str) -> str:
        return f"{self.tag(schedule_id)}:queue"

    async def admit(
        self,
        schedule_id: str,
        patient_id: str,
        pools: list[str],
        slot_id: str | None = None,
        *,
        lease: LeaseTerms | None = None,
        capacity: int = 0,
        serving_ticket: bool = False,
        attempts: AttemptPlan | None = None,
    ) -> Admission:
        """One admission attempt; ``capacity`` > 0 lets the gate answer ``busy``;
        ``attempts``: the attempt limits it counts first, in the same script."""
        state, patients, *pool_keys = self._keys(schedule_id, pools)
        counted = attempts.counted_key if attempts and attempts.counted_key else state
        keys = [
            state,
            patients,
            self.leases_key(schedule_id),
            self.lease_index,
            self.queue_key(schedule_id),
            counted,
            *(attempts.keys if attempts else []),
            *pool_keys,
        ]
        args: list[str | int] = [
            patient_id,
            slot_id or "",
            str(lease.milliseconds) if lease else "",
            lease.owner if lease else "",
            lease.idempotency if lease else "",
            str(capacity),
            "1" if serving_ticket else "0",
            schedule_id,
            len(attempts.keys) if attempts else 0,
            "1" if attempts and attempts.counted_key else "0",
            attempts.window_seconds if attempts else 0,
            *(attempts.args() if attempts else []),
            *pools,
        ]
        outcome, *rest = await self._admit(keys=keys, args=args)
        result = Outcome(outcome)
        if result is Outcome.LIMITED and attempts is not None:
            decision = gcra_decision(attempts.limits, [0, *rest])
            return Admission(result, limited=decision)
        if result is Outcome.ADMITTED:
            return Admission(result, str(rest[0]), str(rest[1]))
        if result is Outcome.LEASED:
            held = Lease.parse(str(rest[0]))
            return Admission(result, held.pool, held.slot_id, lease=held)
        if result is Outcome.SOLD_OUT:
            return Admission(result, in_flight=int(rest[0]))
        return Admission(result)

    async def release(
        self, schedule_id: str, patient_id: str, pool: str | None, slot_id: str | None
    ) -> None:
        """Drop the patient's guard and lease and, when a slot went free, make it bookable."""
        state, patients, pool_key = self._keys(schedule_id, [pool or "none"])
        keys = [state, patients, pool_key, self.leases_key(schedule_id), self.lease_index]
        args = [patient_id, (slot_id or "") if pool else "", schedule_id]
        await self._release(keys=keys, args=args)

    async def settle(self, schedule_id: str, patient_id: str, lease: Lease | None = None) -> bool:
        """The booking committed: its lease ends (the guard stays)."""
        keys = [self.leases_key(schedule_id), self.lease_index]
        args = [patient_id, schedule_id, lease.raw if lease else ""]
        return bool(await self._settle(keys=keys, args=args))

    async def take_over(
        self, schedule_id: str, patient_id: str, held: Lease, terms: LeaseTerms, now_ms: int
    ) -> Lease | None:
        """This request becomes the lease's holder (a retry of the same request)."""
        expires = now_ms + terms.milliseconds
        raw = Lease.format(held.slot_id, held.pool, expires, terms.owner, terms.idempotency)
        keys = [self.leases_key(schedule_id), self.lease_index]
        taken = await self._take_over(
            keys=keys, args=[patient_id, schedule_id, held.raw, raw, expires]
        )
        return Lease.parse(raw) if taken else None

    async def reclaim(
        self, schedule_id: str, patient_id: str, held: Lease, *, booked: bool, slot_open: bool
    ) -> bool:
        """End a dead request's lease as Mongo says: keep the guard if it booked, and give
        the slot back if it is still open there. False if the lease changed meanwhile."""
        state, patients, pool_key = self._keys(schedule_id, [held.pool])
        keys = [state, patients, self.leases_key(schedule_id), self.lease_index, pool_key]
        args = [
            patient_id,
            schedule_id,
            held.raw,
            "1" if booked else "0",
            "1" if slot_open else "0",
        ]
        return bool(await self._reclaim(keys=keys, args=args))

    async def lease_of(self, schedule_id: str, patient_id: str) -> Lease | None:
        raw = await self.redis.hget(self.leases_key(schedule_id), patient_id)
        return Lease.parse(str(raw)) if raw else None

    async def due_leases(self, until_ms: int, limit: int = 200) -> list[tuple[str, str]]:
        """(schedule id, patient id) of leases expiring before ``until_ms``, oldest first."""
        members = await self.redis.zrangebyscore(self.lease_index, "-inf", until_ms, 0, limit)
        return [tuple(str(m).split(SEPARATOR, 1)) for m in members]  # type: ignore[misc]

    async def forget_lease(self, schedule_id: str, patient_id: str) -> None:
        """Drop an index entry whose lease is gone (settled or released elsewhere)."""
        await self.redis.zrem(self.lease_index, f"{schedule_id}{SEPARATOR}{patient_id}")

    async def in_flight(self, schedule_id: str) -> int:
        return int(await self.redis.hlen(self.leases_key(schedule_id)))

    async def initialize(
        self,
        schedule_id: str,
        open_slots: dict[str, list[str]],
        patients: list[str],
        *,
        force: bool = False,
    ) -> bool:
        pools = list(open_slots)
        args: list[str | int] = ["1" if force else "0", len(pools)]
        for pool in pools:
            args += [pool, len(open_slots[pool]), *open_slots[pool]]
        state, guard, *pool_keys = self._keys(schedule_id, pools)
        keys = [state, guard, self.leases_key(schedule_id), *pool_keys]
        return bool(await self._initialize(keys=keys, args=[*args, *patients]))

    async def add_slots(self, schedule_id: str, pool: str, slot_ids: list[str]) -> None:
        """New open slots join a pool's list (when the session's state is in Redis)."""
        keys = self._keys(schedule_id, [pool])
        await self._add(keys=[keys[0], keys[2]], args=slot_ids)

    async def move(self, schedule_id: str, to_pool: str, slots: list[tuple[str, str]]) -> int:
        """Move open slots, given as (pool, slot id), to another pool's list.

        Unlike a rebuild from a Mongo snapshot this never resurrects a slot that an
        in-flight booking was just admitted to.
        """
        if not slots:
            return 0
        tag = self.tag(schedule_id)
        keys = [f"{tag}:state", f"{tag}:pool:{to_pool}", *(f"{tag}:pool:{p}" for p, _ in slots)]
        return int(await self._move(keys=keys, args=[slot_id for _, slot_id in slots]))

    async def guard(self, schedule_id: str, patient_id: str) -> None:
        """Mark a patient as holding a booking in the session (booked outside admission)."""
        await self.redis.sadd(self._keys(schedule_id, [])[1], patient_id)

    async def remaining(self, schedule_id: str, pools: list[str]) -> dict[str, int] | None:
        keys = self._keys(schedule_id, pools)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hexists(keys[0], "ready")
            for key in keys[2:]:
                pipe.llen(key)
            ready, *lengths = await pipe.execute()
        if not ready:
            return None
        return {pool: int(n) for pool, n in zip(pools, lengths, strict=True)}

    async def forget(self, schedule_id: str, pools: list[str]) -> None:
        await self.redis.delete(*self._keys(schedule_id, pools))
