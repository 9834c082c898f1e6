"""The gateway's view of the one rate limiter, which lives in :mod:`shared.ratelimit`.

Kept so that ``services.gateway.ratelimit`` imports keep working; new code imports from
``shared.ratelimit``. The gateway's budgets and policy are in
:mod:`services.gateway.traffic`; it always decides on Redis ``TIME`` (no caller clock).
"""

from __future__ import annotations

from shared.ratelimit import (
    Budget,
    Decision,
    Limit,
    LimiterUnavailable,
    RateLimiter,
    client_key,
    create_limiter_redis,
    parse_address,
)

__all__ = [
    "Budget",
    "Decision",
    "Limit",
    "LimiterUnavailable",
    "RateLimiter",
    "client_key",
    "create_limiter_redis",
    "parse_address",
]
