"""The outbox relay: publishes pending outbox entries to Kafka in order (docs/architecture.md §6).

One replica of a service holds the relay lease at a time, so entries go out in ``_id``
(uuid7, creation) order. A batch is marked sent only after Kafka acknowledged all of it;
a relay killed mid-batch republishes that batch, and consumers' handled-event records drop
the repeats.
While Kafka is down the relay backs off; requests never wait on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, UnknownTopicOrPartitionError

from shared.kafka import create_producer, ensure_topics
from shared.leases import Lease
from shared.metrics import ServiceMetrics
from shared.mongo import Database
from shared.outbox import OUTBOX, Outbox
from shared.settings import ServiceSettings

log = structlog.get_logger(__name__)


class OutboxRelay:
    def __init__(
        self,
        outbox: Outbox,
        settings: ServiceSettings,
        *,
        replica_id: str,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.outbox = outbox
        self.db: Database = outbox.db
        self.settings = settings
        self.metrics = metrics
        self.lease = Lease(
            self.db,
            "outbox-relay",
            replica_id,
            ttl_seconds=max(5.0, settings.outbox_poll_seconds * 20),
        )
        self._producer: AIOKafkaProducer | None = None
        self._stopping = asyncio.Event()
        self.published = 0

    async def run(self) -> None:
        """Publish until :meth:`stop`; survives broker and database outages."""
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                if not await self.lease.acquire():
                    await self._sleep(self.lease.ttl.total_seconds() / 3)
                    continue
                self.outbox.wakeup.clear()  # wake-ups from here on mean new work
                sent = await self.publish_batch()
                backoff = 0.1
                if sent == 0:
                    await self._wait_for_work()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or database down: back off and retry
                log.warning(
                    "outbox.relay_retry",
                    error=str(exc),
                    error_type=type(exc).__name__,
                    backoff_seconds=round(backoff, 2),
                )
                await self._close_producer()
                await self._sleep(backoff)
                backoff = min(backoff * 2, self.settings.outbox_backoff_max_seconds)
        await self._close_producer()
        with contextlib.suppress(Exception):
            await self.lease.release()

    async def publish_batch(self) -> int:
        """Publish one batch of pending entries in order; return how many were sent."""
        cursor = (
            self.db[OUTBOX]
            .find({"status": "pending"})
            .sort([("status", 1), ("_id", 1)])
            .limit(self.settings.outbox_batch_size)
        )
        batch: list[dict[str, Any]] = await cursor.to_list()
        if not batch:
            if self.metrics:
                self.metrics.outbox_backlog.set(0)
            return 0
        producer = await self._ensure_producer()
        try:
            await self._send_all(producer, batch)
        except UnknownTopicOrPartitionError:
            await ensure_topics(
                self.settings.kafka_bootstrap,
                {d["topic"] for d in batch},
                partitions=self.settings.kafka_partitions,
                replication_factor=self.settings.kafka_replication_factor,
            )
            await self._send_all(producer, batch)
        ids = [d["_id"] for d in batch]
        await self.db[OUTBOX].update_many(
            {"_id": {"$in": ids}},
            {"$set": {"status": "sent", "sent_at": datetime.now(UTC)}, "$inc": {"attempts": 1}},
        )
        self.published += len(batch)
        if self.metrics:
            self.metrics.outbox_published.inc(len(batch))
            self.metrics.outbox_backlog.set(await self.outbox.pending_count())
        log.debug("outbox.published", count=len(batch))
        return len(batch)

    async def _send_all(self, producer: AIOKafkaProducer, batch: list[dict[str, Any]]) -> None:
        futures = []
        for doc in batch:  # send() queues in call order; per-partition order is kept
            headers = [(k, str(v).encode()) for k, v in doc.get("headers", {}).items()]
            futures.append(
                await producer.send(
                    doc["topic"],
                    value=bytes(doc["value"]),
                    key=doc["key"].encode(),
                    headers=headers,
                )
            )
        results = await asyncio.gather(*futures, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = create_producer(self.settings)
            try:
                await asyncio.wait_for(producer.start(), 15)
            except BaseException:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def close(self) -> None:
        """Close the producer (for callers that drive :meth:`publish_batch` themselves)."""
        await self._close_producer()

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(KafkaError, OSError, asyncio.TimeoutError):
                await asyncio.wait_for(producer.stop(), 5)

    async def _wait_for_work(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.outbox.wakeup.wait(), self.settings.outbox_poll_seconds)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def stop(self) -> None:
        self._stopping.set()
        self.outbox.wakeup.set()
