"""Which replicas are alive: each keeps a short-lived key in Redis fresh while it runs.

A replica that is killed stops refreshing, and its key expires within ``ttl_seconds``.
Work that a replica holds (a booking's admission lease, an idempotency key in progress)
names the replica, so another one can tell a slow holder from a dead one and take over
(docs/adr/0004).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)


class ReplicaLiveness:
    def __init__(
        self, redis: Redis, replica_id: str, prefix: str = "", ttl_seconds: float = 3.0
    ) -> None:
        self.redis = redis
        self.replica_id = replica_id
        self.prefix = f"{prefix}alive:"
        self.ttl_ms = int(ttl_seconds * 1000)
        self._stopped = asyncio.Event()

    async def beat(self) -> None:
        await self.redis.set(self.prefix + self.replica_id, "1", px=self.ttl_ms)

    async def is_alive(self, replica_id: str) -> bool:
        if replica_id == self.replica_id:
            return True
        return bool(await self.redis.exists(self.prefix + replica_id))

    async def run(self) -> None:
        """Refresh the key three times per ``ttl_seconds`` until stopped; then drop it."""
        while not self._stopped.is_set():
            try:
                await self.beat()
            except (RedisError, OSError) as exc:
                log.warning("replica.heartbeat_failed", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self.ttl_ms / 3000)
        with contextlib.suppress(RedisError, OSError):
            await self.redis.delete(self.prefix + self.replica_id)

    def stop(self) -> None:
        self._stopped.set()
