"""Booking admission in Redis: capacity and the per-patient guard in one atomic script.

At slot release thousands of requests arrive for a few hundred slots. Each request runs
one Lua script per schedule that refuses a patient already admitted to that session and
takes one unit from the first pool (of those the channel may use) that has any left.
Only admitted requests reach Mongo, which stays the source of truth: the slot itself is
claimed there with a conditional update. When Redis loses its keys (restart, eviction),
the next request finds the schedule uninitialized and the service rebuilds it from Mongo.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from redis.asyncio import Redis

ADMIT = """
if redis.call('HEXISTS', KEYS[1], 'ready') == 0 then return {'uninitialized', ''} end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return {'duplicate', ''} end
for i = 2, #ARGV do
  local left = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if left > 0 then
    redis.call('HINCRBY', KEYS[1], ARGV[i], -1)
    redis.call('SADD', KEYS[2], ARGV[1])
    return {'admitted', ARGV[i]}
  end
end
return {'sold_out', ''}
"""

RELEASE = """
if redis.call('HEXISTS', KEYS[1], 'ready') == 0 then return 0 end
local removed = redis.call('SREM', KEYS[2], ARGV[1])
if ARGV[2] ~= '' then redis.call('HINCRBY', KEYS[1], ARGV[2], 1) end
return removed
"""

INITIALIZE = """
if redis.call('HEXISTS', KEYS[1], 'ready') == 1 and ARGV[1] == '0' then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
local n = tonumber(ARGV[2])
for i = 0, n - 1 do
  redis.call('HSET', KEYS[1], ARGV[3 + 2 * i], ARGV[4 + 2 * i])
end
for i = 3 + 2 * n, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
redis.call('HSET', KEYS[1], 'ready', '1')
return 1
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


class AdmissionGate:
    def __init__(self, redis: Redis, prefix: str = "") -> None:
        self.redis = redis
        self.prefix = prefix
        self._admit = redis.register_script(ADMIT)
        self._release = redis.register_script(RELEASE)
        self._initialize = redis.register_script(INITIALIZE)

    def _keys(self, schedule_id: str) -> list[str]:
        tag = f"{self.prefix}adm:{{{schedule_id}}}"
        return [f"{tag}:capacity", f"{tag}:patients"]

    async def admit(self, schedule_id: str, patient_id: str, pools: list[str]) -> Admission:
        outcome, pool = await self._admit(keys=self._keys(schedule_id), args=[patient_id, *pools])
        return Admission(Outcome(outcome), pool or None)

    async def release(self, schedule_id: str, patient_id: str, pool: str | None) -> None:
        """Give back a unit (to ``pool``; None when no slot went free) and the patient's guard."""
        await self._release(keys=self._keys(schedule_id), args=[patient_id, pool or ""])

    async def initialize(
        self,
        schedule_id: str,
        capacity: dict[str, int],
        patients: list[str],
        *,
        force: bool = False,
    ) -> bool:
        args: list[str | int] = ["1" if force else "0", len(capacity)]
        for pool, left in capacity.items():
            args += [pool, left]
        return bool(await self._initialize(keys=self._keys(schedule_id), args=[*args, *patients]))

    async def add_capacity(self, schedule_id: str, pool: str, amount: int) -> None:
        key = self._keys(schedule_id)[0]
        if await self.redis.hexists(key, "ready"):
            await self.redis.hincrby(key, pool, amount)

    async def remaining(self, schedule_id: str) -> dict[str, int] | None:
        values = await self.redis.hgetall(self._keys(schedule_id)[0])
        if not values or "ready" not in values:
            return None
        return {str(k): int(v) for k, v in values.items() if k != "ready"}

    async def forget(self, schedule_id: str) -> None:
        await self.redis.delete(*self._keys(schedule_id))
