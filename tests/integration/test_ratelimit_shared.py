"""The one rate limiter (``shared/ratelimit.py``) against the real Redis of the test stack.

GCRA in one script, all or nothing, on Redis ``TIME`` or on a caller's clock. Its users'
budgets are tested with them: the gateway's in ``tests/integration/gateway/``, booking
attempts in ``tests/integration/appointments/test_attempt_limits.py``, notification sends
in ``tests/integration/notifications/test_limits.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from devstack.stack import EmbeddedStack
from shared.ratelimit import Limit, LimiterUnavailable, RateLimiter
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
        with pytest.raises(LimiterUnavailable):
            await RateLimiter(dead, timeout_seconds=3).hit([Limit("test.down", "k", 1, 60)])
    finally:
        await dead.aclose()


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
