"""Booking attempts per real-name patient (national ID) and per account, in Redis.

Scalpers link the same real-name patient (就诊人) to many accounts and press "book" from
all of them, so per-account and per-address limits at the gateway do not hold them back.
This service knows the patient's national-ID keyed hash: every direct booking attempt
by a patient account counts against that national ID and against the account
(``BookingAttemptLimits``: by default 20 per ID and 30 per account in 10 minutes). A
refused attempt is not counted and answers 429 ``id_attempts_exceeded`` (or
``account_attempts_exceeded``) with ``Retry-After``: when the next attempt would count.

Counted by the one rate limiter (:mod:`shared.ratelimit`, GCRA on Redis ``TIME``, both
subjects in one script, all or nothing) with ``burst=N``, which keeps the meaning the
budgets had as a sliding log: N attempts at once, never more than N in any window W
(after a full burst the next attempt waits W). Keys live under
``appointments:attempts:gcra:`` and expire when their bucket is full.

An attempt is one booking request: a retry with the same ``Idempotency-Key`` (after a
503, a lost answer or a crash) is not counted again, so a patient is never locked out by
retrying what the service asked them to retry.
The ID's subject is a digest of the keyed hash, so Redis keys cannot be joined to
patient records, and logs carry only the digest's first 8 characters.

Staff and service callers (hotline agents booking for callers, integrations) are not
counted. If Redis cannot be asked the attempt passes (the admission gate, which needs
Redis too, then answers for itself).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis

from services.appointments.settings import BookingAttemptLimits
from shared.mongo import Document
from shared.principal import Principal, Role
from shared.problems import TooManyRequests
from shared.ratelimit import Decision, Limit, LimiterUnavailable, RateLimiter, gcra_args
from shared.settings import ServiceSettings

log = structlog.get_logger(__name__)

NAMESPACE = "appointments:attempts:gcra:"  # not the sliding log's sorted sets of before

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
        self.limiter = RateLimiter(redis, prefix, namespace=NAMESPACE)
        self.counted_prefix = f"{prefix}{NAMESPACE}counted:"
        self.limits = limits or BookingAttemptLimits()

    @classmethod
    def from_settings(cls, redis: Redis, settings: ServiceSettings) -> BookingAttempts:
        limits = getattr(settings, "booking_attempts", None)
        return cls(redis, settings.redis_key_prefix, limits)

    def plan(
        self, principal: Principal, patient: Document, request_ref: str = ""
    ) -> AttemptPlan | None:
        """The limits one attempt counts against (None: not counted, e.g. staff).
        ``request_ref`` (the Idempotency-Key's scope and key) counts a request once."""
        limits = self.limits
        if not limits.enabled or principal.is_staff or principal.has_any(Role.SERVICE):
            return None
        window = limits.window_seconds
        ref = national_id_ref(patient)
        subjects = [
            Limit("national_id", ref, limits.per_national_id, window, burst=limits.per_national_id),
            Limit(
                "account", principal.subject, limits.per_account, window, burst=limits.per_account
            ),
        ]
        return AttemptPlan(
            limits=subjects,
            keys=[self.limiter.redis_key(limit) for limit in subjects],
            counted_key=self.counted_prefix + request_ref if request_ref else "",
            window_seconds=window,
            patient_id=str(patient["_id"]),
            account_id=principal.subject,
            id_ref=ref[:8],
        )

    async def check(self, principal: Principal, patient: Document, request_ref: str = "") -> None:
        """Count one booking attempt for ``patient`` by ``principal``, or raise 429 (for an
        attempt refused before admission, which counts it in its own script otherwise)."""
        plan = self.plan(principal, patient, request_ref)
        if plan is None:
            return
        try:
            if plan.counted_key and not await self.limiter.call(
                self.redis.set(plan.counted_key, "1", nx=True, ex=plan.window_seconds)
            ):
                return  # this request was counted when it was first made
            decision = await self.limiter.hit(plan.limits)
            if not decision.allowed and plan.counted_key:
                await self.limiter.call(self.redis.delete(plan.counted_key))  # refused
        except LimiterUnavailable as exc:
            log.warning("appointments.attempt_limits_unavailable", error=str(exc))
            return
        refuse_if_exceeded(plan, decision)


@dataclass(frozen=True)
class AttemptPlan:
    """An attempt's limits as the admission script counts them (``admission_scripts``)."""

    limits: list[Limit]
    keys: list[str]
    counted_key: str  # '' when the request has no Idempotency-Key
    window_seconds: int
    patient_id: str
    account_id: str
    id_ref: str  # the first characters of the national ID's digest, for the log

    def args(self) -> list[int]:
        return gcra_args(self.limits)


def refuse_if_exceeded(plan: AttemptPlan, decision: Decision) -> None:
    """429 ``id_attempts_exceeded`` / ``account_attempts_exceeded`` for a refused attempt."""
    if decision.allowed or decision.limit is None:
        return
    kind, seconds = decision.limit.name, decision.retry_after
    log.info(
        "appointments.booking_attempts_exceeded",
        limit=kind,
        patient_id=plan.patient_id,
        account_id=plan.account_id,
        id_ref=plan.id_ref,
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
