"""Booking attempts per real-name patient (national ID) and per account, in Redis.

Scalpers link the same real-name patient (就诊人) to many accounts and press "book" from
all of them, so per-account and per-address limits at the gateway do not hold them back.
This service knows the patient's national-ID keyed hash: every direct booking attempt
by a patient account counts against that national ID and against the account, in a
sliding window (``BookingAttemptLimits``: by default 20 per ID and 30 per account in 10
minutes). A refused attempt is not counted and answers 429 ``id_attempts_exceeded`` (or
``account_attempts_exceeded``) with ``Retry-After``: when the oldest counted attempt
leaves the window.

Sliding-window log: one sorted set per subject holding the attempts' times, checked and
added to in one Lua script for both subjects (all or nothing) with Redis server time;
sets expire a window after their last attempt. The ID's subject is a digest of the
keyed hash, so Redis keys cannot be joined to patient records, and logs carry only the
digest's first 8 characters.

Staff and service callers (hotline agents booking for callers, integrations) are not
counted. If Redis cannot be asked the attempt passes (the admission gate, which needs
Redis too, then answers for itself).
"""

from __future__ import annotations

import hashlib
import math
import secrets

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.appointments.settings import BookingAttemptLimits
from shared.mongo import Document
from shared.principal import Principal, Role
from shared.problems import TooManyRequests
from shared.settings import ServiceSettings

log = structlog.get_logger(__name__)

# KEYS: one sorted set per subject. ARGV: window (µs), a unique member suffix, then the
# capacity of each key. -> {0, 0} when counted; {index of the exhausted key, wait in ms}.
SLIDING_LOG = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local worst, worst_wait = 0, 0
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  if redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[i + 2]) then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    local wait = math.max(1, tonumber(oldest[2]) + window - now)
    if wait > worst_wait then worst, worst_wait = i, wait end
  end
end
if worst > 0 then return {worst, math.ceil(worst_wait / 1000)} end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now, string.format('%.0f', now) .. ':' .. ARGV[2])
  redis.call('PEXPIRE', KEYS[i], math.ceil(window / 1000) + 1000)
end
return {0, 0}
"""

_REFUSALS = {
    "national_id": (
        "id_attempts_exceeded",
        "Too many booking attempts for this patient",
        "该就诊人预约操作过于频繁",
    ),
    "account": (
        "account_attempts_exceeded",
        "Too many booking attempts from this account",
        "该账号预约操作过于频繁",
    ),
}


def national_id_ref(patient: Document) -> str:
    """A digest of the patient's national-ID lookup hash (the patient id if it has none)."""
    material = str(patient.get("national_id_hash") or f"patient:{patient['_id']}")
    return hashlib.sha256(b"booking-attempts:" + material.encode()).hexdigest()[:32]


class BookingAttempts:
    def __init__(
        self, redis: Redis, prefix: str = "", limits: BookingAttemptLimits | None = None
    ) -> None:
        self.redis = redis
        self.prefix = f"{prefix}appointments:attempts:"
        self.limits = limits or BookingAttemptLimits()
        self._script = redis.register_script(SLIDING_LOG)

    @classmethod
    def from_settings(cls, redis: Redis, settings: ServiceSettings) -> BookingAttempts:
        limits = getattr(settings, "booking_attempts", None)
        return cls(redis, settings.redis_key_prefix, limits)

    async def check(self, principal: Principal, patient: Document) -> None:
        """Count one booking attempt for ``patient`` by ``principal``, or raise 429."""
        limits = self.limits
        if not limits.enabled or principal.is_staff or principal.has_any(Role.SERVICE):
            return
        ref = national_id_ref(patient)
        subjects = [("national_id", ref, limits.per_national_id)]
        subjects.append(("account", principal.subject, limits.per_account))
        keys = [f"{self.prefix}{kind}:{key}" for kind, key, _ in subjects]
        args: list[int | str] = [limits.window_seconds * 1_000_000, secrets.token_hex(8)]
        args += [capacity for _, _, capacity in subjects]
        try:
            index, wait_ms = await self._script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            log.warning("appointments.attempt_limits_unavailable", error=type(exc).__name__)
            return
        if int(index) == 0:
            return
        kind = subjects[int(index) - 1][0]
        seconds = max(1, math.ceil(int(wait_ms) / 1000))
        log.info(
            "appointments.booking_attempts_exceeded",
            limit=kind,
            patient_id=patient["_id"],
            account_id=principal.subject,
            id_ref=ref[:8],
            retry_after=seconds,
        )
        code, en, zh = _REFUSALS[kind]
        raise TooManyRequests(
            code,
            f"{en}; retry in {seconds} seconds.",
            detail_zh=f"{zh}，请 {seconds} 秒后再试。",
            retry_after=seconds,
            extra={"limit": kind},
        )
