"""The one rate limiter (``shared/ratelimit.py``) against the real Redis of the test stack.

GCRA in one script, all or nothing, on Redis ``TIME`` or on a caller's clock. Its users'
budgets are tested with them: the gateway's in ``tests/integration/gateway/``, booking
attempts in ``tests/integration/appointments/test_attempt_limits.py``, notification sends
in ``tests/integration/notifications/test_limits.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from devstack.stack import EmbeddedStack
from services.notifications.limits import PatientRateLimit
from shared.ratelimit import Budget, Limit, LimiterBusy, LimiterUnavailable, RateLimiter
from shared.redis_client import create_redis

pytestmark = pytest.mark.integration

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1
S = 1_000_000  # µs
T0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z, a caller's fixed clock


@pytest.fixture
async def redis(stack: EmbeddedStack) -> AsyncIterator[Redis]:
    """The limiter's own client; 20 connections, so 200 concurrent hits must queue."""
    client = create_redis(stack.redis_url(), max_connections=20, wait_seconds=5)
    yield client
    await client.aclose()


async def test_capacity_is_exact_under_200_concurrent_hits(redis: Redis, run_id: str) -> None:
    limiter = RateLimiter(redis, f"{run_id}:", timeout_seconds=10)
    limit = Limit("test.concurrent", "k", 50, 3600)
    decisions = await asyncio.gather(*(limiter.hit([limit]) for _ in range(200)))
    assert sum(d.allowed for d in decisions) == 50
    refused = [d for d in decisions if not d.allowed]
    assert {d.limit for d in refused} == {limit}
    assert all(1 <= d.retry_after <= 72 for d in refused)  # one emission interval
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(50))


async def test_all_or_nothing_across_the_limits_of_one_hit(redis: Redis, run_id: str) -> None:
    limiter = RateLimiter(redis, f"{run_id}:")
    wide, narrow = Limit("test.wide", "k", 5, 3600), Limit("test.narrow", "k", 2, 3600)
    assert [(await limiter.hit([wide, narrow])).allowed for _ in range(2)] == [True, True]
    refused = await limiter.hit([wide, narrow])
    assert (refused.allowed, refused.limit, refused.remaining) == (False, narrow, 0)
    # the refused hit took nothing from the wide limit: three of its five are left
    assert [(await limiter.hit([wide])).allowed for _ in range(4)] == [True, True, True, False]
    with pytest.raises(ValueError, match="share a key"):
        await limiter.hit([wide, Limit("test.wide", "k", 9, 60)])
    assert (await limiter.hit([])).allowed


async def test_retry_after_is_the_wait_for_the_most_binding_limit(
    redis: Redis, run_id: str
) -> None:
    limiter = RateLimiter(redis, f"{run_id}:")
    minute, hour = Limit("test.minute", "k", 1, 30), Limit("test.hour", "k", 1, 3600)
    assert (await limiter.hit([minute, hour])).allowed
    refused = await limiter.hit([minute, hour])
    assert refused.limit == hour
    assert 3590 <= refused.retry_after <= 3600
    assert 29 <= (await limiter.hit([minute])).retry_after <= 30


async def test_a_bucket_refills_continuously(redis: Redis, run_id: str) -> None:
    limiter = RateLimiter(redis, f"{run_id}:")
    limit = Limit("test.refill", "k", 2, 1)  # one more every half second
    assert [(await limiter.hit([limit])).allowed for _ in range(3)] == [True, True, False]
    await asyncio.sleep(0.6)
    assert (await limiter.hit([limit])).allowed


async def test_keys_expire_by_themselves(redis: Redis, run_id: str) -> None:
    limiter = RateLimiter(redis, f"{run_id}:")
    limit = Limit("test.expiry", "k", 10, 60)
    await limiter.hit([limit])
    ttl_ms = await redis.pttl(limiter.redis_key(limit))
    assert 0 < ttl_ms <= 6_001  # until the bucket is full again: one interval
    short = Limit("test.expiry_short", "k", 1, 0.2)
    await limiter.hit([short])
    await asyncio.sleep(0.35)
    assert await redis.exists(limiter.redis_key(short)) == 0


async def test_prefixes_do_not_interfere(redis: Redis, run_id: str) -> None:
    one, two = RateLimiter(redis, f"{run_id}:a:"), RateLimiter(redis, f"{run_id}:b:")
    limit = Limit("test.prefix", "k", 1, 3600)
    assert (await one.hit([limit])).allowed
    assert not (await one.hit([limit])).allowed
    assert (await two.hit([limit])).allowed


async def test_redis_down_raises_limiter_unavailable() -> None:
    dead = create_redis(DEAD_REDIS)
    try:
        with pytest.raises(LimiterUnavailable) as raised:
            await RateLimiter(dead, timeout_seconds=3).hit([Limit("test.down", "k", 1, 60)])
        assert not isinstance(raised.value, LimiterBusy)  # refused: an outage, not a surge
    finally:
        await dead.aclose()


async def test_an_exhausted_pool_is_busy_not_down(stack: EmbeddedStack, run_id: str) -> None:
    client = create_redis(stack.redis_url(), max_connections=1, wait_seconds=0.05)
    limiter = RateLimiter(client, f"{run_id}:", timeout_seconds=2)
    limit = Limit("test.busy", "k", 5, 60)
    held = await client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        with pytest.raises(LimiterBusy):
            await limiter.hit([limit])
    finally:
        await client.connection_pool.release(held)
    assert (await limiter.hit([limit])).allowed
    await client.aclose()
    other = create_redis(stack.redis_url())
    slow = RateLimiter(other, f"{run_id}:", timeout_seconds=0.05)
    await other.ping()  # connected: the script below starts at once
    try:  # a script keeps Redis busy for 0.3 s: the hit runs past its timeout
        busy: asyncio.Task[Any] = asyncio.create_task(other.eval(BUSY_LOOP, 0))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)  # Redis is inside the script now
        with pytest.raises(LimiterBusy):
            await slow.hit([limit])
        await busy
    finally:
        await other.aclose()


BUSY_LOOP = """
local t = redis.call('TIME')
local until_us = tonumber(t[1]) * 1000000 + tonumber(t[2]) + 300000
repeat t = redis.call('TIME') until tonumber(t[1]) * 1000000 + tonumber(t[2]) > until_us
return 1
"""


# --- a caller's clock ----------------------------------------------------------------


async def test_on_a_callers_clock_n_per_window_is_a_burst_then_one_per_interval(
    redis: Redis, run_id: str
) -> None:
    limiter = RateLimiter(redis, f"{run_id}:", namespace="test:")
    limit = Limit("clock", "k", 3, 60)  # 3 per minute: one every 20 s after the burst

    async def at(seconds: float) -> tuple[bool, int]:
        decision = await limiter.hit([limit], now_us=T0 + int(seconds * S))
        return decision.allowed, decision.retry_after

    assert [await at(0) for _ in range(3)] == [(True, 0)] * 3
    assert await at(0) == (False, 20)
    assert await at(12.5) == (False, 8)  # whole seconds, rounded up
    assert await at(20) == (True, 0)
    assert await at(20) == (False, 20)
    # rested for a whole window, the full burst is back (and no more)
    assert [(await at(100))[0] for _ in range(4)] == [True, True, True, False]


async def test_a_callers_clock_sets_expiry_relative_to_it(redis: Redis, run_id: str) -> None:
    limiter = RateLimiter(redis, f"{run_id}:", namespace="test:")
    limit = Limit("clock_ttl", "k", 2, 60)
    await limiter.hit([limit], now_us=T0)  # a clock far from Redis TIME
    ttl_ms = await redis.pttl(limiter.redis_key(limit))
    assert 29_000 < ttl_ms <= 30_001  # one interval, not "already past"
    with pytest.raises(ValueError, match="negative"):
        await limiter.hit([limit], now_us=-1)


async def test_namespaces_keep_users_apart(redis: Redis, run_id: str) -> None:
    gateway = RateLimiter(redis, f"{run_id}:")
    other = RateLimiter(redis, f"{run_id}:", namespace="appointments:attempts:gcra:")
    limit = Limit("account", "acct-1", 1, 3600)
    assert gateway.redis_key(limit) == f"{run_id}:ratelimit:account:acct-1"
    assert other.redis_key(limit) == f"{run_id}:appointments:attempts:gcra:account:acct-1"
    assert (await gateway.hit([limit])).allowed
    assert (await other.hit([limit])).allowed
    assert not (await other.hit([limit])).allowed


# --- burst: never more than N in any window -------------------------------------------


def admitted_in_windows(times: list[float], window: float) -> int:
    """The most admitted hits in any half-open window [t, t + window)."""
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


async def run_clock(limiter: RateLimiter, limit: Limit, step: float, seconds: float) -> list[float]:
    """Try a hit every ``step`` seconds of the caller's clock; the times that were admitted."""
    admitted, n = [], 0
    while (at := n * step) < seconds:
        if (await limiter.hit([limit], now_us=T0 + round(at * S))).allowed:
            admitted.append(at)
        n += 1
    return admitted


@pytest.mark.parametrize("burst", [1, 2, 5])
async def test_with_a_burst_no_window_ever_holds_more_than_the_capacity(
    redis: Redis, run_id: str, burst: int
) -> None:
    limiter = RateLimiter(redis, f"{run_id}:", namespace=f"test:b{burst}:")
    limit = Limit("strict", "k", 5, 60, burst=burst)  # 5 per minute, never more
    admitted = await run_clock(limiter, limit, 0.5, 600)
    assert admitted_in_windows(admitted, 60) == 5
    at_once = RateLimiter(redis, f"{run_id}:", namespace=f"test:once{burst}:")
    tries = [(await at_once.hit([limit], now_us=T0)).allowed for _ in range(burst + 1)]
    assert tries == [True] * burst + [False]  # B at once, no more
    per_window = (5 - burst + 1) * 600 / 60  # the long-run rate: (N - B + 1) per window
    assert per_window <= len(admitted) <= per_window + burst


async def test_a_burst_of_n_is_n_at_once_then_one_per_window(redis: Redis, run_id: str) -> None:
    limiter = RateLimiter(redis, f"{run_id}:", namespace="test:")
    limit = Limit("strict_n", "k", 3, 60, burst=3)

    async def at(seconds: float) -> tuple[bool, int]:
        decision = await limiter.hit([limit], now_us=T0 + int(seconds * S))
        return decision.allowed, decision.retry_after

    assert [await at(0) for _ in range(4)] == [(True, 0)] * 3 + [(False, 60)]
    assert await at(59.5) == (False, 1)
    assert await at(60) == (True, 0)
    assert await at(60) == (False, 60)


async def test_without_a_burst_the_first_window_admits_up_to_2n_minus_1(
    redis: Redis, run_id: str
) -> None:
    """The default meaning, N per W on average: pinned, so that changing it is a decision."""
    limiter = RateLimiter(redis, f"{run_id}:", namespace="test:")
    admitted = await run_clock(limiter, Limit("average", "k", 5, 60), 0.5, 60)
    assert len(admitted) == 2 * 5 - 1


async def test_arrivals_exactly_one_interval_apart_keep_the_bound(
    redis: Redis, run_id: str
) -> None:
    """The interval is rounded up: hits spaced by it to the microsecond still fit."""
    limiter = RateLimiter(redis, f"{run_id}:", namespace="test:")
    limit = Limit("exact", "k", 7, 1, burst=3)  # 1 s / 5 = 200 000 µs exactly; 1 s / 7 not
    odd = Limit("odd", "k", 7, 1, burst=1)  # 142 857.14 µs: rounded up to 142 858
    for each in (limit, odd):
        admitted = [
            t
            for t in (i * each.interval_us for i in range(40))
            for _ in range(3)
            if (await limiter.hit([each], now_us=T0 + t)).allowed
        ]
        assert admitted_in_windows([t / S for t in admitted], 1.0) <= 7


def test_burst_is_validated_and_scales_with_a_multiplier() -> None:
    with pytest.raises(ValueError, match="burst"):
        Limit("x", "k", 3, 60, burst=4)
    with pytest.raises(ValueError, match="burst"):
        Limit("x", "k", 3, 60, burst=0)
    with pytest.raises(ValueError, match="burst"):
        Budget(capacity=3, window_seconds=60, burst=4)
    budget = Budget(capacity=3, window_seconds=60, burst=2)
    assert budget.limits("n", "k", 10) == [Limit("n", "k", 30, 60, burst=20)]
    assert Budget(capacity=3, window_seconds=60).limits("n", "k") == [Limit("n", "k", 3, 60)]


async def test_notification_limits_never_exceed_their_hour(
    stack: EmbeddedStack, run_id: str
) -> None:
    """Three messages an hour per patient and channel: three at once, then none for the
    hour, however the hour is cut (the budget's meaning as a window)."""

    redis = Redis.from_url(stack.redis_url(), decode_responses=True)
    limits = PatientRateLimit(redis, f"{run_id}:", per_hour=3)
    start = 1_700_000_000_000_000
    limiter, limit = limits.limiter, limits.limit("p-1", "sms")
    sent = []
    for minute in range(0, 121, 5):  # a message offered every five minutes for two hours
        if (await limiter.hit([limit], now_us=start + minute * 60_000_000)).allowed:
            sent.append(minute)
    await redis.aclose()
    assert sent == [0, 5, 10, 60, 120]
    for first in range(0, 121):  # any 60 minutes hold at most three
        assert sum(1 for m in sent if first <= m < first + 60) <= 3, sent
