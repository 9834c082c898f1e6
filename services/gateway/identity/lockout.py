"""Staff password attempts, reserved in Redis before a password is checked.

Each attempt first takes a numbered place (one ``INCR`` in a script, so parallel attempts
get distinct numbers); past ``limit`` places the attempt is refused without checking the
password, so any number of parallel guesses checks at most ``limit`` passwords. A failed
check keeps its place; the ``limit``-th failure locks the username for ``lockout`` (the
places expire then); a success gives every place back.

Places are counted per username (unknown ones too, so they behave alike) and per
version of the account document: an admin's unlock, password reset or any other change
bumps the version, which starts the count afresh.
"""

from __future__ import annotations

import hashlib

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.auth import auth_unavailable
from shared.problems import ServiceUnavailable

log = structlog.get_logger(__name__)

# KEYS: the places' counter; ARGV: limit, window in ms -> the place, or 0 when refused
RESERVE = """
local n = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then return 0 end
return n
"""


def _unavailable(exc: Exception) -> ServiceUnavailable:
    log.warning("login.attempts_unavailable", error=type(exc).__name__)
    return auth_unavailable()


class LoginAttempts:
    """Needs a client made with ``decode_responses=True`` (``shared.redis_client``)."""

    def __init__(
        self, redis: Redis, *, prefix: str = "", limit: int = 5, lockout_seconds: int = 900
    ) -> None:
        self.redis = redis
        self._prefix = f"{prefix}auth:pwtries:"
        self.limit = limit
        self.lockout_ms = lockout_seconds * 1000
        self._reserve = redis.register_script(RESERVE)

    def key(self, username: str, version: object) -> str:
        name = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
        return f"{self._prefix}{name}:{version or 0}"

    async def reserve(self, key: str) -> int:
        """This attempt's place (1..limit), or 0: refused, do not check the password."""
        try:
            return int(await self._reserve(keys=[key], args=[self.limit, self.lockout_ms]))
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc

    async def failed(self, key: str, place: int) -> bool:
        """A failed check at ``place``; True when it locks (the lockout starts now)."""
        if place < self.limit:
            return False
        try:
            await self.redis.pexpire(key, self.lockout_ms)
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc
        return True

    async def succeeded(self, key: str) -> None:
        try:
            await self.redis.delete(key)
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc
