"""Redis client factory (redis.asyncio); connects lazily."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis


def create_redis(url: str, *, max_connections: int = 200, wait_seconds: float = 2.0) -> Redis:
    """A client whose pool makes a caller wait up to ``wait_seconds`` for a connection.

    redis-py's default pool fails at once (``MaxConnectionsError``) when all of its
    connections are busy, which a booking surge turns into 500s; queueing briefly for a
    connection is what a surge needs (a wait that runs out is a ``ConnectionError``).
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=wait_seconds,
        decode_responses=True,
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
        health_check_interval=15,
    )
    return Redis.from_pool(pool)


async def ping(redis: Redis) -> None:
    await redis.ping()
