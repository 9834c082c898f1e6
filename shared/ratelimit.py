"""The one rate limiter: GCRA buckets in Redis, all limits of a hit in one atomic script.

Used by the gateway's front door (:mod:`services.gateway.traffic`), the appointments
service's booking attempts per national ID and account
(:mod:`services.appointments.attempt_limits`) and the notifications service's sends per
patient and channel (:mod:`services.notifications.limits`); ADR 0003.

Algorithm: GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp).
A :class:`Limit` of ``capacity`` per ``window_seconds`` has an emission interval
``T = window / capacity``; each key stores its *theoretical arrival time* (TAT). A hit at
``now`` is allowed when ``max(TAT, now) + T - window <= now`` and then moves TAT on by
``T``. So a fresh or rested client may send ``capacity`` requests at once (the burst) and
after that one per ``T``: the bucket refills continuously instead of at window edges, so
there is no double burst at a boundary as with fixed windows. Compared with a sliding
log, memory is one short string per key whatever the capacity, and a hit costs O(1).

* Atomic and all-or-nothing: one Lua script reads every key of the request, decides, and
  writes the new TATs only if *every* limit allows the hit. A refused request consumes
  nothing, so a client kept out by its per-IP budget does not also drain its per-account
  budget (and the other way round).
* Time is Redis server ``TIME`` (microseconds), read inside the script, so replicas
  with skewed clocks share one notion of now. Redis >= 5 replicates scripts by effect,
  which allows the non-deterministic ``TIME`` before writes. A caller whose own clock is
  the truth (a test driving a fixed clock) may pass ``now_us`` instead; the keys of one
  namespace must then always be hit with the same kind of clock.
* Keys expire by themselves: each is written with ``PX`` = the time until its bucket is
  full again, after which it carries no information.
* ``retry_after`` is the wait (rounded up to whole seconds, at least 1) until the most
  binding refused limit would allow the request.
* Redis down, slow or erroring: :meth:`RateLimiter.hit` raises :class:`LimiterUnavailable`
  and the caller's policy decides whether to fail open or closed.

* Mapping a budget of "N per window W": ``Limit(capacity=N, window_seconds=W)`` lets a
  rested subject make N hits at once and then one every W/N; over a long run that is N
  per W. Unlike a sliding log it does not promise "at most N in *any* window W" (a burst
  of N followed by the refill admits up to 2N - 1 in the first W), and a refusal's
  ``retry_after`` is the wait for the next refill (W/N after a burst), not for a whole
  window.

All keys of one call are touched by one script, so on Redis Cluster they would need a
common hash tag; the deployment uses a single Redis (docs/architecture.md §3). Each user
keeps its keys under its own ``namespace`` (``ratelimit:`` at the gateway).

Also here: :class:`Budget` (a limit as configured), :func:`client_key` (an address as a
key, IPv6 by network) and :func:`create_limiter_redis` (a pool that queues in a surge).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import math
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.redis_client import create_redis

_US = 1_000_000
T = TypeVar("T")

# KEYS: one per limit. ARGV: now in µs ('' for Redis TIME), then per limit its emission
# interval and its window (capacity * interval), both in whole microseconds.
# -> {1, 0, remaining} when allowed; {0, index of the most binding refusal, wait in ms}.
GCRA = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local tats = {}
local worst, worst_wait, remaining = 0, 0, -1
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - window
  if allow_at > now then
    if allow_at - now > worst_wait then worst, worst_wait = i, allow_at - now end
  else
    local left = math.floor((now - allow_at) / interval)
    if remaining < 0 or left < remaining then remaining = left end
  end
  tats[i] = new_tat
end
if worst > 0 then return {0, worst, math.ceil(worst_wait / 1000)} end
for i = 1, #KEYS do
  local ttl = math.ceil((tats[i] - now) / 1000) + 1
  redis.call('SET', KEYS[i], string.format('%.0f', tats[i]), 'PX', ttl)
end
return {1, 0, remaining}
"""


def create_limiter_redis(url: str) -> Redis:
    """A Redis client for the limiter alone: its own pool keeps limiter traffic from
    starving a service's other Redis users (or being starved by them), and a caller
    waits at most 0.25 s for a connection before the limiter counts as unavailable."""
    return create_redis(url, max_connections=200, wait_seconds=0.25)


class LimiterUnavailable(Exception):
    """Redis could not be asked (down, slow, erroring): the caller decides open or closed."""


@dataclass(frozen=True)
class Limit:
    """At most ``capacity`` hits per ``window_seconds`` for one ``key`` of limit ``name``.

    ``name`` identifies the rule (``booking.account``) and appears in problems and
    metrics; ``key`` the subject it counts (an account id, an address, a hash). Neither
    may contain personal data in clear: keys are stored in Redis as given.
    """

    name: str
    key: str
    capacity: int
    window_seconds: float

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError("a limit's capacity must be at least 1")
        if self.window_seconds <= 0:
            raise ValueError("a limit's window must be positive")
        if self.interval_us < 1:
            raise ValueError("capacity too large for the window (under 1 µs per hit)")

    @property
    def interval_us(self) -> int:
        """GCRA emission interval in whole microseconds (floored: the burst stays exact)."""
        return int(self.window_seconds * _US) // self.capacity


class Budget(BaseModel):
    """Configuration of a limit: ``capacity`` per ``window_seconds`` (0 turns it off)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    capacity: int = Field(ge=0)
    window_seconds: float = Field(gt=0, le=86_400)

    def limits(self, name: str, key: str, multiplier: int = 1) -> list[Limit]:
        """``[Limit]`` for ``key``, or ``[]`` when the budget is off."""
        if self.capacity == 0:
            return []
        return [Limit(name, key, self.capacity * multiplier, self.window_seconds)]


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(text: str | None) -> IPAddress | None:
    """The address in ``text`` (IPv4-mapped IPv6 as IPv4), or None if it is not one."""
    try:
        address = ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_key(client_ip: str | None, ipv6_prefix: int = 64) -> str:
    """A client address as a limit key: IPv4 as is; IPv6 by its network (one host holds a
    whole /64, so counting single addresses would let it rotate); anything else hashed."""
    address = parse_address(client_ip)
    if address is None:
        return "x" + hashlib.sha256((client_ip or "").encode()).hexdigest()[:16]
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/{ipv6_prefix}", strict=False))
    return str(address)


@dataclass(frozen=True)
class Decision:
    """The outcome of one :meth:`RateLimiter.hit`.

    ``retry_after`` is whole seconds (>= 1) when refused, 0 when allowed. ``limit`` is the
    refusing limit (the one with the longest wait). ``remaining`` is how many more hits
    the tightest limit allows right now (0 when refused, -1 when no limit applied).
    """

    allowed: bool
    retry_after: int
    limit: Limit | None
    remaining: int


class RateLimiter:
    """Checks and consumes several :class:`Limit` s of one request atomically in Redis."""

    def __init__(
        self,
        redis: Redis,
        prefix: str = "",
        *,
        namespace: str = "ratelimit:",
        timeout_seconds: float = 0.5,
    ) -> None:
        self.redis = redis
        self.prefix = f"{prefix}{namespace}"
        self.timeout_seconds = timeout_seconds
        self._gcra = redis.register_script(GCRA)

    def redis_key(self, limit: Limit) -> str:
        return f"{self.prefix}{limit.name}:{limit.key}"

    async def hit(self, limits: Sequence[Limit], *, now_us: int | None = None) -> Decision:
        """Count one hit against every limit, or against none if any is exhausted.

        ``now_us`` (microseconds since the epoch) replaces Redis ``TIME``: only for callers
        whose own clock is the truth for these keys (see the module's docstring).
        """
        if not limits:
            return Decision(allowed=True, retry_after=0, limit=None, remaining=-1)
        keys = [self.redis_key(limit) for limit in limits]
        if len(set(keys)) != len(keys):
            raise ValueError("two limits of one hit share a key")
        if now_us is not None and now_us < 0:
            raise ValueError("now_us must not be negative")
        args: list[int | str] = ["" if now_us is None else now_us]
        for limit in limits:
            args += [limit.interval_us, limit.interval_us * limit.capacity]
        allowed, index, value = await self.call(self._gcra(keys=keys, args=args))
        if int(allowed) == 1:
            return Decision(allowed=True, retry_after=0, limit=None, remaining=int(value))
        refused = limits[int(index) - 1]
        retry_after = max(1, math.ceil(int(value) / 1000))
        return Decision(allowed=False, retry_after=retry_after, limit=refused, remaining=0)

    async def call(self, awaitable: Awaitable[T]) -> T:
        """Await a Redis call within the timeout; any failure becomes LimiterUnavailable."""
        try:
            async with asyncio.timeout(self.timeout_seconds):
                return await awaitable
        except (RedisError, OSError, TimeoutError) as exc:
            raise LimiterUnavailable(f"rate limiter unavailable: {type(exc).__name__}") from exc
