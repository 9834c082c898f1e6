"""Logouts and ended logins in Redis: one key layout for the gateway and every service.

The gateway writes them (``services/gateway/identity/sessions.py``) and checks them at the
front door (``services/gateway/front_script.py``); every service checks them again when it
verifies a token (``shared.auth.TokenVerifier``, wired in ``shared/service.py``), so a
logged-out token is refused even when it reaches a service directly.

* ``<prefix>auth:jti:<jti>`` exists: the token with that ``jti`` was logged out.
* ``<prefix>auth:block:<account>`` holds an epoch second: every token of the account
  issued at or before it belongs to an ended login (password change, account disabled).

:class:`TokenRevocations` reads both in one ``MGET`` and may remember an answer for a few
seconds (bounded), so a burst of requests with one token costs one Redis round trip.
Redis errors propagate: the verifier turns them into a 503 ``auth_unavailable`` (fail
closed).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from redis.asyncio import Redis

from shared.principal import Principal

REVOKED = "revoked"  # the token was logged out
ENDED = "ended"  # its account's logins were ended after it was issued


def jti_key(prefix: str, token_id: str) -> str:
    """The key whose existence means the token ``token_id`` was logged out."""
    return f"{prefix}auth:jti:{token_id}"


def block_key(prefix: str, account_id: str) -> str:
    """The key holding when every login of ``account_id`` was last ended (epoch s)."""
    return f"{prefix}auth:block:{account_id}"


async def revoke_token(redis: Redis, prefix: str, token_id: str, ttl_seconds: int) -> None:
    """Log out one token for ``ttl_seconds`` (at least the rest of its life)."""
    await redis.set(jti_key(prefix, token_id), 1, ex=ttl_seconds)


async def end_logins(
    redis: Redis, prefix: str, account_id: str, ttl_seconds: int, *, at: int | None = None
) -> None:
    """Refuse every token of ``account_id`` issued until now (or ``at``)."""
    when = int(time.time()) if at is None else at
    await redis.set(block_key(prefix, account_id), when, ex=ttl_seconds)


def verdict(issued_at: int, jti_found: object, blocked: object) -> str | None:
    """What the two keys' values say of a token issued at ``issued_at``."""
    if jti_found is not None:
        return REVOKED
    if blocked is not None and issued_at <= int(str(blocked)):
        return ENDED
    return None


class TokenRevocations:
    """Reads a token's logout and its account's ended logins (``decode_responses`` client).

    ``cache_seconds`` (0: none) is how long an answer is remembered per token, at most
    ``cache_size`` of them; a logout reaches this process at most that late.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "",
        cache_seconds: float = 0.0,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.cache_seconds = cache_seconds
        self.cache_size = max(1, cache_size)
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, str | None]] = OrderedDict()

    async def check(self, principal: Principal) -> str | None:
        """``None`` for a live token, else :data:`REVOKED` or :data:`ENDED`."""
        token_id = principal.token_id or ""
        now = self._clock()
        cached = self._cache.get(token_id) if token_id and self.cache_seconds > 0 else None
        if cached is not None and cached[0] > now:
            return cached[1]
        keys = [block_key(self.prefix, principal.subject)]
        if token_id:
            keys.insert(0, jti_key(self.prefix, token_id))
        values = await self.redis.mget(keys)
        found = values[0] if token_id else None
        result = verdict(principal.issued_at or 0, found, values[-1])
        if token_id and self.cache_seconds > 0:
            self._remember(token_id, now + self.cache_seconds, result)
        return result

    def _remember(self, token_id: str, until: float, result: str | None) -> None:
        self._cache[token_id] = (until, result)
        self._cache.move_to_end(token_id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
