"""Booking admission in Redis: capacity and the per-patient guard in one atomic script.

At slot release thousands of requests arrive for a few hundred slots. Each request runs
one Lua script per schedule that refuses a patient already admitted to that session and
hands out one open slot id from the first pool (of those the channel may use) that has
any left. Admitted requests therefore target distinct slots and do not collide in Mongo,
which stays the source of truth: the slot is claimed there with a conditional update.
When Redis loses its keys (restart, eviction), the next request finds the schedule
uninitialized and the service rebuilds it from Mongo.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from redis.asyncio import Redis

# KEYS: state hash, patients set, then one list of open slot ids per pool in ARGV order
# ARGV: patient id, wanted slot id ('' for any), pool names...
ADMIT = """
if redis.call('HEXISTS', KEYS[1], 'ready') == 0 then return {'uninitialized', '', ''} end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return {'duplicate', '', ''} end
for i = 3, #ARGV do
  local slot = false
  if ARGV[2] ~= '' then
    if redis.call('LREM', KEYS[i], 1, ARGV[2]) == 1 then slot = ARGV[2] end
  else
    slot = redis.call('LPOP', KEYS[i])
  end
  if slot then
    redis.call('SADD', KEYS[2], ARGV[1])
    return {'admitted', ARGV[i], slot}
  end
end
return {'sold_out', '', ''}
"""

# KEYS: state hash, patients set, the pool's list; ARGV: patient id, slot id ('' for none)
RELEASE = """
if redis.call('HEXISTS', KEYS[1], 'ready') == 0 then return 0 end
local removed = redis.call('SREM', KEYS[2], ARGV[1])
if ARGV[2] ~= '' then
  redis.call('LREM', KEYS[3], 0, ARGV[2])
  redis.call('LPUSH', KEYS[3], ARGV[2])
end
return removed
"""

# KEYS: state hash, patients set, pool lists...; ARGV: force, pool count, then per pool
# its name and slot count followed by the slot ids, then the patients
INITIALIZE = """
if redis.call('HEXISTS', KEYS[1], 'ready') == 1 and ARGV[1] == '0' then return 0 end
redis.call('DEL', unpack(KEYS))
local at = 3
for p = 1, tonumber(ARGV[2]) do
  local count = tonumber(ARGV[at + 1])
  at = at + 2
  for s = 0, count - 1 do redis.call('RPUSH', KEYS[2 + p], ARGV[at + s]) end
  at = at + count
end
for i = at, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
redis.call('HSET', KEYS[1], 'ready', '1')
return 1
"""

# KEYS: state hash, the pool's list; ARGV: slot ids (nothing when the state is not loaded)
ADD = """
if redis.call('HEXISTS', KEYS[1], 'ready') == 0 then return 0 end
for i = 1, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
return #ARGV
"""

# KEYS: state hash, the target pool's list, then the source list of each slot in ARGV order
# ARGV: slot ids. A slot already handed out (not in its list) stays out: an admitted
# booking that has not committed yet keeps it.
MOVE = """
if redis.call('HEXISTS', KEYS[1], 'ready') == 0 then return 0 end
local moved = 0
for i = 1, #ARGV do
  if redis.call('LREM', KEYS[2 + i], 1, ARGV[i]) == 1 then
    redis.call('RPUSH', KEYS[2], ARGV[i])
    moved = moved + 1
  end
end
return moved
"""


class Outcome(StrEnum):
    ADMITTED = "admitted"
    DUPLICATE = "duplicate"
    SOLD_OUT = "sold_out"
    UNINITIALIZED = "uninitialized"


@dataclass(frozen=True)
class Admission:
    outcome: Outcome
    pool: str | None = None
    slot_id: str | None = None


class AdmissionGate:
    def __init__(self, redis: Redis, prefix: str = "") -> None:
        self.redis = redis
        self.prefix = prefix
        self._admit = redis.register_script(ADMIT)
        self._release = redis.register_script(RELEASE)
        self._initialize = redis.register_script(INITIALIZE)
        self._add = redis.register_script(ADD)
        self._move = redis.register_script(MOVE)

    def _tag(self, schedule_id: str) -> str:
        return f"{self.prefix}adm:{{{schedule_id}}}"  # one hash slot per schedule

    def _keys(self, schedule_id: str, pools: list[str]) -> list[str]:
        tag = self._tag(schedule_id)
        return [f"{tag}:state", f"{tag}:patients", *(f"{tag}:pool:{p}" for p in pools)]

    async def admit(
        self, schedule_id: str, patient_id: str, pools: list[str], slot_id: str | None = None
    ) -> Admission:
        outcome, pool, slot = await self._admit(
            keys=self._keys(schedule_id, pools), args=[patient_id, slot_id or "", *pools]
        )
        return Admission(Outcome(outcome), pool or None, slot or None)

    async def release(
        self, schedule_id: str, patient_id: str, pool: str | None, slot_id: str | None
    ) -> None:
        """Drop the patient's guard and, when a slot went free, make it bookable again."""
        keys = self._keys(schedule_id, [pool or "none"])
        await self._release(keys=keys, args=[patient_id, (slot_id or "") if pool else ""])

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
        keys = self._keys(schedule_id, pools)
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
        tag = self._tag(schedule_id)
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
