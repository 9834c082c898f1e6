"""Per-patient rate limits on push messages, in Redis (a fixed window per hour and channel).

Urgent and mandatory messages are never held back; others wait for the next window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

WINDOW_SECONDS = 3600


class PatientRateLimit:
    def __init__(self, redis: Redis, key_prefix: str, per_hour: int) -> None:
        self.redis = redis
        self.prefix = key_prefix
        self.per_hour = per_hour

    async def admit(self, patient_id: str, channel: str, now: datetime) -> datetime | None:
        """Count one send; None if it may go now, else when the next window opens."""
        if self.per_hour <= 0:
            return None
        window = int(now.timestamp()) // WINDOW_SECONDS
        key = f"{self.prefix}notifications:rate:{patient_id}:{channel}:{window}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS * 2)
            count, _ = await pipe.execute()
        if int(count) <= self.per_hour:
            return None
        await self.redis.decr(key)  # this send did not happen: give its place back
        return datetime.fromtimestamp((window + 1) * WINDOW_SECONDS, UTC) + timedelta(seconds=1)
