"""Kafka plumbing: producer factory and explicit topic creation (no broker auto-create)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import structlog
from aiokafka import AIOKafkaClient, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from shared.settings import ServiceSettings

log = structlog.get_logger(__name__)

SERVICE_TOPICS = ("appointments", "referrals", "notifications", "followup", "his")


def topic_name(settings: ServiceSettings, service: str) -> str:
    return f"{settings.kafka_topic_prefix}.{service}"


def dlq_topic(topic: str, consumer: str) -> str:
    return f"{topic}.dlq.{consumer}"


def all_service_topics(settings: ServiceSettings) -> list[str]:
    return [topic_name(settings, s) for s in SERVICE_TOPICS]


def create_producer(settings: ServiceSettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=f"careloop-{settings.service_name}",
        acks="all",
        enable_idempotence=settings.kafka_idempotent_producer,
        linger_ms=2,
        request_timeout_ms=10_000,
        retry_backoff_ms=200,
        max_batch_size=256 * 1024,
    )


async def ensure_topics(
    bootstrap: str,
    topics: Iterable[str],
    *,
    partitions: int,
    replication_factor: int = 1,
    timeout: float = 15.0,
) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    Safe to call from many replicas at once and again after a broker restart
    (the embedded broker keeps topics in memory, docs/architecture.md §3).
    """
    wanted = sorted(set(topics))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await asyncio.wait_for(admin.start(), timeout)
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(t, partitions, replication_factor) for t in missing]
                )
            log.info("kafka.topics_created", topics=missing, partitions=partitions)
        return missing
    finally:
        await admin.close()


async def kafka_ready(bootstrap: str, timeout: float = 3.0) -> bool:
    """True when the broker answers a metadata request."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
        await asyncio.wait_for(admin.list_topics(), timeout)
        return True
    except (KafkaError, TimeoutError, OSError):
        return False
    finally:
        await admin.close()


class KafkaProbe:
    """A long-lived metadata client for readiness checks (cheaper than a client per check)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._client: AIOKafkaClient | None = None

    async def check(self) -> None:
        if self._client is None:
            client = AIOKafkaClient(bootstrap_servers=self.bootstrap, request_timeout_ms=2000)
            await client.bootstrap()
            self._client = client
        await self._client.fetch_all_metadata()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
