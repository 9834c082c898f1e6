"""Gateway costs as ratios on the same Redis: what a rate-limit decision adds to a request.

* the whole :meth:`TrafficPolicy.check` of a booking request (GCRA over address, account
  and class budgets in one script call, slow-lane flag lookup) vs a bare ``PING``;
* a refused request (the 429 a release-time surge meets) vs the same bare ``PING``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from devstack.stack import EmbeddedStack
from services.gateway.traffic import ClassLimits, RateLimitSettings, TrafficPolicy
from shared.problems import TooManyRequests
from shared.ratelimit import Budget, create_limiter_redis

CALLS = 2000


async def bench_gateway(stack: EmbeddedStack) -> list[tuple[str, float, float]]:
    redis = create_limiter_redis(stack.redis_url())
    prefix = f"bench:{time.time_ns()}:"
    roomy = Budget(capacity=10 * CALLS, window_seconds=60)
    tight = Budget(capacity=1, window_seconds=3600)
    at_noon = lambda: datetime(2026, 1, 1, 4, 0, tzinfo=UTC)  # noqa: E731  (outside windows)
    admitting = TrafficPolicy(
        redis,
        RateLimitSettings(booking=ClassLimits(per_ip=roomy, per_account=roomy, per_class=roomy)),
        prefix=prefix,
        hash_key=b"bench",
        clock=at_noon,
    )
    refusing = TrafficPolicy(
        redis,
        RateLimitSettings(booking=ClassLimits(per_account=tight)),
        prefix=prefix + "r:",
        hash_key=b"bench",
        clock=at_noon,
    )
    booking = "/v1/appointments/appointments"
    try:
        started = time.perf_counter()
        for _ in range(CALLS):
            await redis.ping()
        bare = CALLS / (time.perf_counter() - started)

        started = time.perf_counter()
        for n in range(CALLS):
            await admitting.check(
                method="POST",
                path=booking,
                client_ip=f"10.0.{n % 200}.1",
                account_id=f"pa-{n}",
                user_agent="app",
            )
        admitted = CALLS / (time.perf_counter() - started)

        await refusing.check(
            method="POST", path=booking, client_ip="10.1.0.1", account_id="pa-x", user_agent="app"
        )
        started = time.perf_counter()
        for _ in range(CALLS):
            try:
                await refusing.check(
                    method="POST",
                    path=booking,
                    client_ip="10.1.0.1",
                    account_id="pa-x",
                    user_agent="app",
                )
            except TooManyRequests:
                pass
            else:
                raise AssertionError("the tight budget let a request through")
        refused = CALLS / (time.perf_counter() - started)
    finally:
        async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
            await redis.delete(key)
        await redis.aclose()
    return [
        ("gateway rate-limit check (booking, admitted) vs bare redis PING", admitted, bare),
        ("gateway rate-limit check (booking, refused 429) vs bare redis PING", refused, bare),
    ]
