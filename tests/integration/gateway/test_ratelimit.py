"""The gateway's traffic policy against the real Redis of the test stack.

The limiter itself (shared by the gateway, appointments and notifications) is tested in
``tests/integration/test_ratelimit_shared.py``. Release windows are decided by an injected
clock, never by sleeping until 08:00.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis

from devstack.stack import EmbeddedStack
from services.gateway.front_script import TokenKeys
from services.gateway.traffic import (
    ClassLimits,
    EndpointClass,
    RateLimitSettings,
    TrafficPolicy,
)
from shared.problems import ServiceUnavailable, TooManyRequests
from shared.ratelimit import Budget
from shared.redis_client import create_redis

pytestmark = pytest.mark.integration

SHANGHAI = ZoneInfo("Asia/Shanghai")
BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) MicroMessenger/8.0.47"
BOOK = {"method": "POST", "path": "/v1/appointments/appointments"}
IN_WINDOW = datetime(2025, 3, 3, 8, 3, tzinfo=SHANGHAI)  # 08:00 release, 7 minutes left
OUTSIDE = datetime(2025, 3, 3, 12, 0, tzinfo=SHANGHAI)
DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
async def redis(stack: EmbeddedStack) -> AsyncIterator[Redis]:
    """The limiter's own client; 20 connections, so 200 concurrent hits must queue."""
    client = create_redis(stack.redis_url(), max_connections=20, wait_seconds=5)
    yield client
    await client.aclose()


def b(capacity: int, window_seconds: float) -> Budget:
    return Budget(capacity=capacity, window_seconds=window_seconds)


Check = Callable[..., Awaitable[EndpointClass]]


def policy_for(redis: Redis, run_id: str, at: datetime, **overrides: Any) -> Check:
    """``check(**kwargs)``: a patient's booking unless kwargs say otherwise; clock at ``at``."""
    settings = RateLimitSettings.model_validate(
        {"redis_timeout_seconds": 5, "release_windows": ["08:00"], **overrides}
    )
    policy = TrafficPolicy(
        redis, settings, prefix=f"{run_id}:", hash_key=b"k" * 32, clock=lambda: at
    )

    async def check(**kwargs: Any) -> EndpointClass:
        values: dict[str, Any] = {
            **BOOK,
            "client_ip": "203.0.113.7",
            "account_id": "acct-1",
            "user_agent": BROWSER,
            **kwargs,
        }
        return await policy.check(**values)

    return check


async def outcomes(calls: Iterable[Awaitable[EndpointClass]]) -> Counter[str]:
    results = await asyncio.gather(*calls, return_exceptions=True)
    return Counter(r.code if isinstance(r, TooManyRequests) else "ok" for r in results)


async def _code(call: Awaitable[EndpointClass]) -> str:
    try:
        await call
    except TooManyRequests as exc:
        return exc.code
    return "ok"


# --- the policy ----------------------------------------------------------------------


async def test_a_booking_surge_gets_fast_429s_with_retry_after(redis: Redis, run_id: str) -> None:
    check = policy_for(redis, run_id, OUTSIDE, booking={"per_account": b(5, 60)})
    started = time.perf_counter()
    results = await asyncio.gather(*(check() for _ in range(200)), return_exceptions=True)
    elapsed = time.perf_counter() - started
    refusals = [r for r in results if isinstance(r, TooManyRequests)]
    assert len(refusals) == 195
    assert [r for r in results if not isinstance(r, TooManyRequests)] == [EndpointClass.BOOKING] * 5
    assert {(r.code, r.extra["limit"]) for r in refusals} == {("rate_limited", "booking.account")}
    assert all(1 <= int((r.headers or {})["Retry-After"]) <= 12 for r in refusals)
    assert all(r.detail_zh for r in refusals)
    assert elapsed < 10, elapsed  # refusals, not timeouts
    # another account from another address is not held back by this one
    assert await check(account_id="acct-2", client_ip="198.51.100.9") == EndpointClass.BOOKING


async def test_many_accounts_behind_one_address_share_its_budget(redis: Redis, run_id: str) -> None:
    check = policy_for(redis, run_id, OUTSIDE, booking={"per_ip": b(30, 60)})
    counts = await outcomes([check(account_id=f"acct-{i}") for i in range(50)])
    assert counts == {"ok": 30, "rate_limited": 20}
    assert await check(client_ip="2001:db8::1") == EndpointClass.BOOKING


async def test_a_scripted_client_is_put_in_the_slow_lane_for_the_window(
    redis: Redis, run_id: str
) -> None:
    check = policy_for(redis, run_id, IN_WINDOW, slow_lane=b(2, 60))
    ua = "python-requests/2.31.0"
    assert await outcomes([check(account_id="bot-1", user_agent=ua) for _ in range(3)]) == {
        "ok": 2,
        "slow_lane": 1,
    }
    with pytest.raises(TooManyRequests) as refused:
        await check(account_id="bot-1")  # a browser User-Agent now changes nothing
    assert refused.value.code == "slow_lane"
    assert refused.value.extra == {"limit": "booking.slow_lane"}
    assert 1 <= int((refused.value.headers or {})["Retry-After"]) <= 60
    assert refused.value.detail_zh
    flag = f"{run_id}:botflag:account:bot-1"
    assert await redis.get(flag) == "user_agent"
    assert 400 <= await redis.ttl(flag) <= 420  # until 08:10, the end of the window
    # a person on the same address is not slowed down
    assert await check(account_id="person-1") == EndpointClass.BOOKING


async def test_a_burst_of_attempts_flags_the_account(redis: Redis, run_id: str) -> None:
    check = policy_for(
        redis,
        run_id,
        IN_WINDOW,
        booking={"per_account": b(100, 60)},
        bot_account_burst=b(3, 3),
        slow_lane=b(2, 60),
    )
    results = [await _code(check(account_id="fast-1")) for _ in range(7)]
    # three within the burst, then flagged: the slow lane's two, then refusals
    assert results == ["ok", "ok", "ok", "ok", "ok", "slow_lane", "slow_lane"]
    assert await redis.get(f"{run_id}:botflag:account:fast-1") == "burst"


async def test_nothing_is_flagged_outside_a_window(redis: Redis, run_id: str) -> None:
    check = policy_for(redis, run_id, OUTSIDE, booking={"per_account": b(100, 60)})
    counts = await outcomes([check(account_id="cli-1", user_agent="curl/8.5") for _ in range(20)])
    assert counts == {"ok": 20}
    assert await redis.keys(f"{run_id}:botflag:*") == []


async def test_staff_and_exempt_networks_are_never_flagged(redis: Redis, run_id: str) -> None:
    check = policy_for(redis, run_id, IN_WINDOW, exempt_networks=["10.20.0.0/16"])
    for _ in range(5):
        await check(account_id="agent-1", user_agent="okhttp/4.12", is_staff=True)
        await check(account_id="kiosk-1", user_agent="", client_ip="10.20.1.2")
    assert await redis.keys(f"{run_id}:botflag:*") == []


async def test_login_codes_are_limited_per_phone_without_storing_it(
    redis: Redis, run_id: str
) -> None:
    check = policy_for(redis, run_id, OUTSIDE, login_code=ClassLimits(per_key={"phone": b(2, 900)}))
    phone = "13912345678"
    ask = {"method": "POST", "path": "/v1/auth/otp", "account_id": None}
    for address in ("203.0.113.1", "203.0.113.2"):
        assert await check(**ask, client_ip=address, body_keys={"phone": phone}) == (
            EndpointClass.LOGIN_CODE
        )
    with pytest.raises(TooManyRequests) as refused:
        await check(**ask, client_ip="203.0.113.3", body_keys={"phone": f" {phone} "})
    assert refused.value.extra == {"limit": "login_code.phone"}
    assert all(phone not in key for key in await redis.keys(f"{run_id}:*"))


async def test_redis_down_fails_open_for_reads_and_closed_for_booking_and_login() -> None:
    dead = create_redis(DEAD_REDIS)
    policy = TrafficPolicy(
        dead, RateLimitSettings(redis_timeout_seconds=3), clock=lambda: IN_WINDOW
    )
    common: dict[str, Any] = {"client_ip": "203.0.113.7", "account_id": "acct-1"}
    common["user_agent"] = BROWSER
    try:
        read = await policy.check(method="GET", path="/v1/appointments/schedules", **common)
        assert read is EndpointClass.READ
        for method, path in [("POST", "/v1/appointments/appointments"), ("POST", "/v1/auth/otp")]:
            with pytest.raises(ServiceUnavailable) as refused:
                await policy.check(method=method, path=path, **common)
            assert refused.value.code == "rate_limiter_unavailable"
            assert (refused.value.headers or {})["Retry-After"] == "5"
        # a token whose logout cannot be checked is refused, even for a read (fail closed)
        token = TokenKeys("auth:jti:t-1", "auth:block:acct-1", 1_700_000_000)
        with pytest.raises(ServiceUnavailable) as unknown:
            await policy.check(
                method="GET", path="/v1/appointments/schedules", token=token, **common
            )
        assert unknown.value.code == "auth_unavailable"
    finally:
        await dead.aclose()
