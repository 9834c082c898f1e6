"""Per-patient rate limits on push messages: at most ``per_hour`` per patient and channel.

Counted by the one rate limiter (:mod:`shared.ratelimit`, GCRA on Redis ``TIME``, so
delivery replicas with skewed clocks agree) with ``burst=per_hour``, which keeps the
meaning the budget had as an hourly window: a patient may get ``per_hour`` messages on a
channel at once and never more than ``per_hour`` in any hour (a full burst refills one
message an hour; the old fixed window even allowed twice as many across the top of an
hour). A held message is retried
when the limiter would allow it (the caller's ``now`` + ``retry_after``); a held send is
not counted. Urgent and mandatory messages are never held back (the caller skips them).
If Redis cannot be asked, :class:`~shared.ratelimit.LimiterUnavailable` propagates and
the delivery job is retried.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from redis.asyncio import Redis

from shared.ratelimit import Limit, RateLimiter

WINDOW_SECONDS = 3600
NAMESPACE = "notifications:rate:"


class PatientRateLimit:
    def __init__(self, redis: Redis, key_prefix: str, per_hour: int) -> None:
        self.limiter = RateLimiter(redis, key_prefix, namespace=NAMESPACE)
        self.per_hour = per_hour

    def limit(self, patient_id: str, channel: str) -> Limit:
        return Limit(channel, patient_id, self.per_hour, WINDOW_SECONDS, burst=self.per_hour)

    async def admit(self, patient_id: str, channel: str, now: datetime) -> datetime | None:
        """Count one send; None if it may go now, else when it may go."""
        if self.per_hour <= 0:
            return None
        decision = await self.limiter.hit([self.limit(patient_id, channel)])
        if decision.allowed:
            return None
        return now + timedelta(seconds=decision.retry_after)
