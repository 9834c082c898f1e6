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
  and the caller's policy decides whether to fail open or closed. Its subclass
  :class:`LimiterBusy` says Redis is there but could not be asked in time (no pooled
  connection free within the pool's wait, or the call ran past its timeout): a surge,
  which a caller may answer with a quick "try again" rather than as an outage.

* Two meanings of "N per window W" (``burst`` of :class:`Limit` and :class:`Budget`):

  - ``burst=None`` (the default, *N per W on average*): ``Limit(capacity=N,
    window_seconds=W)`` lets a rested subject make N hits at once and then one every
    W/N; over a long run that is N per W. It does not promise "at most N in *any* window
    W": a burst of N followed by the refill admits up to 2N - 1 in the first W, and a
    refusal's ``retry_after`` is the wait for the next refill (W/N after a burst).
  - ``burst=B`` with 1 <= B <= N (*never more than N in any W*): at most B hits at once,
    and never more than N in any window of length W, wherever it starts. To keep that
    promise the bucket refills one hit every ``W / (N - B + 1)`` (rounded *up* to the
    microsecond), so the long-run rate is (N - B + 1) per W. Why it holds: GCRA admits
    n hits in a span of length L only if ``(n - B) * T <= L``; inside a window of length
    W a span is shorter than W, so ``n < B + W / T = N + 1``. ``burst=N`` is N at once
    and then one per W; ``burst=1`` is one every W/N, evenly spaced, with the average
    rate of N per W; between them the caller trades the size of a burst against the
    rate that follows it. (Only a sliding log has both the burst of N and N per W.)

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
from typing import Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.redis_client import create_redis

_US = 1_000_000
T = TypeVar("T")

# Lua functions other scripts embed (the gateway's front door, services.gateway.front_check):
# gcra_now(arg) is the caller's clock in µs, or Redis TIME when arg is not a number;
# gcra_hit(now, keys, intervals, buckets) counts one hit against every key, or against
# none: -> {1, 0, remaining} when allowed; {0, index of the most binding refusal, wait in
# ms}. A key's bucket is its interval times its burst (the delay tolerance plus one
# interval), both in whole microseconds.
GCRA_FUNCTIONS = """
local function gcra_now(arg)
  local now = tonumber(arg)
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  return now
end

local function gcra_hit(now, keys, intervals, buckets)
  local tats = {}
  local worst, worst_wait, remaining = 0, 0, -1
  for i = 1, #keys do
    local interval = intervals[i]
    local tat = tonumber(redis.call('GET', keys[i]) or '0')
    if tat < now then tat = now end
    local new_tat = tat + interval
    local allow_at = new_tat - buckets[i]
    if allow_at > now then
      if allow_at - now > worst_wait then worst, worst_wait = i, allow_at - now end
    else
      local left = math.floor((now - allow_at) / interval)
      if remaining < 0 or left < remaining then remaining = left end
    end
    tats[i] = new_tat
  end
  if worst > 0 then return {0, worst, math.ceil(worst_wait / 1000)} end
  for i = 1, #keys do
    local ttl = math.ceil((tats[i] - now) / 1000) + 1
    redis.call('SET', keys[i], string.format('%.0f', tats[i]), 'PX', ttl)
  end
  return {1, 0, remaining}
end
"""

# KEYS: one per limit. ARGV: now in µs ('' for Redis TIME), then per limit its emission
# interval and its bucket (:func:`gcra_args`).
GCRA = (
    GCRA_FUNCTIONS
    + """
local intervals, buckets = {}, {}
for i = 1, #KEYS do
  intervals[i] = tonumber(ARGV[2 * i])
  buckets[i] = tonumber(ARGV[2 * i + 1])
end
return gcra_hit(gcra_now(ARGV[1]), KEYS, intervals, buckets)
"""
)


def create_limiter_redis(url: str) -> Redis:
    """A Redis client for the limiter alone: its own pool keeps limiter traffic from
    starving a service's other Redis users (or being starved by them), and a caller
    waits at most 0.25 s for a connection before the limiter counts as unavailable."""
    return create_redis(url, max_connections=200, wait_seconds=0.25)


class LimiterUnavailable(Exception):
    """Redis could not be asked (down, slow, erroring): the caller decides open or closed."""


class LimiterBusy(LimiterUnavailable):
    """Redis could not be asked in time: every pooled connection stayed busy for the pool's
    whole wait, or the call ran past its timeout (a surge, not an outage)."""


def limiter_failure(exc: BaseException) -> LimiterUnavailable:
    """``exc`` of a Redis call as :class:`LimiterBusy` (pool exhausted, timed out) or else
    :class:`LimiterUnavailable` (refused, reset, an error reply)."""
    name = type(exc).__name__
    busy = isinstance(exc, TimeoutError | RedisTimeoutError | MaxConnectionsError) or (
        isinstance(exc, RedisConnectionError) and isinstance(exc.__cause__, TimeoutError)
    )  # BlockingConnectionPool: "No connection available." from the wait's TimeoutError
    if busy:
        return LimiterBusy(f"rate limiter busy: {name}")
    return LimiterUnavailable(f"rate limiter unavailable: {name}")


@dataclass(frozen=True)
class Limit:
    """``capacity`` hits per ``window_seconds`` for one ``key`` of limit ``name``.

    ``burst=None``: N per W on average, N at once; ``burst=B``: never more than N in any
    window W, at most B at once (the module's docstring). ``name`` identifies the rule
    (``booking.account``) and appears in problems and metrics; ``key`` the subject it
    counts (an account id, an address, a hash). Neither may contain personal data in
    clear: keys are stored in Redis as given.
    """

    name: str
    key: str
    capacity: int
    window_seconds: float
    burst: int | None = None

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError("a limit's capacity must be at least 1")
        if self.window_seconds <= 0:
            raise ValueError("a limit's window must be positive")
        if self.burst is not None and not 1 <= self.burst <= self.capacity:
            raise ValueError("a limit's burst must be between 1 and its capacity")
        if self.interval_us < 1:
            raise ValueError("capacity too large for the window (under 1 µs per hit)")

    @property
    def interval_us(self) -> int:
        """GCRA emission interval in whole microseconds: W/N floored (the burst of N stays
        exact) by default; W/(N - B + 1) rounded up with a ``burst`` (the bound stays)."""
        window_us = int(self.window_seconds * _US)
        if self.burst is None:
            return window_us // self.capacity
        return -(-window_us // (self.capacity - self.burst + 1))

    @property
    def bucket_us(self) -> int:
        """The bucket: ``burst`` (default ``capacity``) intervals."""
        return self.interval_us * (self.capacity if self.burst is None else self.burst)


def gcra_args(limits: Sequence[Limit]) -> list[int]:
    """Per limit, its interval and its bucket: the ARGV that :data:`GCRA_FUNCTIONS` reads."""
    return [n for limit in limits for n in (limit.interval_us, limit.bucket_us)]


def gcra_decision(limits: Sequence[Limit], result: Sequence[Any]) -> Decision:
    """The :class:`Decision` of ``gcra_hit``'s answer ``{allowed, index, value}``."""
    allowed, index, value = (int(x) for x in result[:3])
    if allowed == 1:
        return Decision(allowed=True, retry_after=0, limit=None, remaining=value)
    retry_after = max(1, math.ceil(value / 1000))
    return Decision(allowed=False, retry_after=retry_after, limit=limits[index - 1], remaining=0)


class Budget(BaseModel):
    """Configuration of a limit: ``capacity`` per ``window_seconds`` (0 turns it off);
    ``burst`` (at most ``capacity``) makes it "never more than ``capacity`` in any window",
    at most ``burst`` at once; unset, "``capacity`` per window on average" (:class:`Limit`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    capacity: int = Field(ge=0)
    window_seconds: float = Field(gt=0, le=86_400)
    burst: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.burst is not None and self.capacity and self.burst > self.capacity:
            raise ValueError("a budget's burst may not exceed its capacity")
        return self

    def limits(self, name: str, key: str, multiplier: int = 1) -> list[Limit]:
        """``[Limit]`` for ``key``, or ``[]`` when the budget is off."""
        if self.capacity == 0:
            return []
        burst = None if self.burst is None else self.burst * multiplier
        return [Limit(name, key, self.capacity * multiplier, self.window_seconds, burst)]


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
        args: list[int | str] = ["" if now_us is None else now_us, *gcra_args(limits)]
        return gcra_decision(limits, await self.call(self._gcra(keys=keys, args=args)))

    async def call(self, awaitable: Awaitable[T]) -> T:
        """Await a Redis call within the timeout; any failure becomes LimiterUnavailable."""
        try:
            async with asyncio.timeout(self.timeout_seconds):
                return await awaitable
        except (RedisError, OSError, TimeoutError) as exc:
            raise limiter_failure(exc) from exc
