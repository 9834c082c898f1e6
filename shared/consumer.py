"""The Kafka consumer runner (docs/architecture.md §6).

* one consumer group per (service, consumer name); replicas split the partitions;
* offsets are committed per partition only after everything a ``getmany()`` returned for
  it was handled (Tansu can skip records when a fetch starts mid-batch);
* each event is handled in one Mongo transaction with its handled-event record: effectively once;
* a failing handler is retried with backoff, then the event becomes a dead letter and the
  partition moves on;
* contention (write conflicts, transient transaction errors, :class:`~shared.mongo.Contended`)
  is not a failure: it is waited out with jittered backoff, spends none of the event's
  attempts and never makes a dead letter;
* the request id from the record's headers is bound into every log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from pydantic import ValidationError

from shared.dead_letters import dead_letter_document, record_dead_letter
from shared.events import Envelope
from shared.handled_events import AlreadyHandled, HandledEvents
from shared.kafka import ensure_topics
from shared.metrics import ServiceMetrics
from shared.outbox import Outbox, Tx, is_contention
from shared.settings import ServiceSettings

log = structlog.get_logger(__name__)

Handler = Callable[[Envelope, Tx], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerSpec:
    """What one consumer listens to and which handler takes each event type."""

    name: str
    topics: tuple[str, ...]
    handlers: Mapping[str, Handler]  # CloudEvents type -> handler


class ConsumerStopping(Exception):
    """The consumer was asked to stop while an event waited out contention: the batch is
    left uncommitted, to be handled again after the restart."""


class ConsumerRunner:
    def __init__(
        self,
        spec: ConsumerSpec,
        outbox: Outbox,
        settings: ServiceSettings,
        *,
        metrics: ServiceMetrics | None = None,
        group_id: str | None = None,
    ) -> None:
        self.spec = spec
        self.outbox = outbox
        self.db = outbox.db
        self.handled_events = HandledEvents(self.db)
        self.settings = settings
        self.metrics = metrics
        self.group_id = group_id or (
            f"{settings.kafka_group_prefix}{settings.service_name}.{spec.name}"
        )
        self.consumer_name = f"{settings.service_name}.{spec.name}"
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self.handled = 0

    async def run(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                await self._consume()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except ConsumerStopping:
                log.info("consumer.stopped_mid_batch", consumer=self.consumer_name)
            except Exception as exc:
                log.warning(
                    "consumer.restart",
                    consumer=self.consumer_name,
                    error=str(exc),
                    error_type=type(exc).__name__,
                )
                await self._sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                await self._close()

    async def _consume(self) -> None:
        await ensure_topics(
            self.settings.kafka_bootstrap,
            self.spec.topics,
            partitions=self.settings.kafka_partitions,
            replication_factor=self.settings.kafka_replication_factor,
        )
        consumer = AIOKafkaConsumer(
            *self.spec.topics,
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=self.group_id,
            client_id=self.consumer_name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=200,
            metadata_max_age_ms=5000,
            session_timeout_ms=self.settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=self.settings.kafka_heartbeat_interval_ms,
            rebalance_timeout_ms=10_000,
        )
        self._consumer = consumer
        await asyncio.wait_for(consumer.start(), 20)
        idle_since = asyncio.get_running_loop().time()
        while not self._stopping.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=200)
            now = asyncio.get_running_loop().time()
            if not consumer.assignment() and now - idle_since > 10:
                # the broker may have lost our topics (memory storage): recreate them
                await ensure_topics(
                    self.settings.kafka_bootstrap,
                    self.spec.topics,
                    partitions=self.settings.kafka_partitions,
                )
                idle_since = now
            for tp, records in batches.items():
                for record in records:
                    await self.handle_record(record)
                try:
                    await consumer.commit({tp: records[-1].offset + 1})
                except (CommitFailedError, KafkaError) as exc:
                    # a rebalance moved the partition: the next owner redelivers (deduped)
                    log.warning(
                        "consumer.commit_failed",
                        consumer=self.consumer_name,
                        partition=tp.partition,
                        error=str(exc),
                    )
                self._record_lag(consumer, tp, records[-1].offset + 1)
            if batches:
                idle_since = now

    async def handle_record(self, record: ConsumerRecord[bytes, bytes]) -> None:
        headers = {k: v.decode(errors="replace") for k, v in (record.headers or ())}
        structlog.contextvars.bind_contextvars(
            request_id=headers.get("x-request-id"),
            event_id=headers.get("ce_id"),
            event_type=headers.get("ce_type"),
            consumer=self.consumer_name,
        )
        try:
            await self._handle_with_retries(record, headers)
        finally:
            structlog.contextvars.unbind_contextvars(
                "request_id", "event_id", "event_type", "consumer"
            )

    async def _handle_with_retries(
        self, record: ConsumerRecord[bytes, bytes], headers: dict[str, str]
    ) -> None:
        try:
            event = Envelope.from_bytes(record.value or b"")
        except (ValidationError, ValueError) as exc:
            await self._dead_letter(record, headers, f"unreadable event: {exc}", 1, None)
            return
        handler = self.spec.handlers.get(event.type)
        if handler is None:
            self._count(event.type, "ignored")
            return
        attempt = 0  # failures of the handler; contention is not one
        contended = 0
        while True:
            try:
                await self.outbox.transaction(lambda tx: self._apply(handler, event, tx))
                self.handled += 1
                self._count(event.type, "handled")
                log.info("event.handled", attempt=attempt + 1, contended=contended)
                return
            except AlreadyHandled:
                self._count(event.type, "duplicate")
                log.info("event.duplicate_dropped")
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_contention(exc):
                    contended += 1
                    await self._wait_out_contention(event, exc, contended)
                    continue
                attempt += 1
                if attempt >= self.settings.consumer_max_attempts:
                    await self._dead_letter(
                        record, headers, f"{type(exc).__name__}: {exc}", attempt, event
                    )
                    return
                delay = min(
                    self.settings.consumer_retry_base_seconds * 2 ** (attempt - 1),
                    self.settings.consumer_retry_max_seconds,
                )
                log.warning(
                    "event.retry",
                    attempt=attempt,
                    error=str(exc),
                    error_type=type(exc).__name__,
                    delay_seconds=delay,
                )
                self._count(event.type, "retried")
                await asyncio.sleep(delay)

    async def _wait_out_contention(self, event: Envelope, exc: Exception, times: int) -> None:
        """Back off (full jitter, growing to the retry cap) and let the caller try again.

        Contention passes: concurrent transactions commit, and an open transaction left by
        a killed process is reaped by the server (60 s). It spends none of the event's
        attempts and never makes a dead letter. A consumer asked to stop meanwhile
        abandons the batch uncommitted, so the event is handled after the restart.
        """
        if self._stopping.is_set():
            raise ConsumerStopping(self.consumer_name)
        cap = min(
            self.settings.consumer_retry_base_seconds * 2 ** min(times, 16),
            self.settings.consumer_retry_max_seconds,
        )
        delay = random.uniform(cap / 2, cap)  # noqa: S311 - jitter, not a secret
        self._count(event.type, "contended")
        log.warning(
            "event.contended",
            times=times,
            error=str(exc)[:300],
            error_type=type(exc).__name__,
            delay_seconds=round(delay, 3),
        )
        await self._sleep(delay)

    async def _apply(self, handler: Handler, event: Envelope, tx: Tx) -> None:
        await self.handled_events.record(tx.session, self.consumer_name, event.id, event.type)
        await handler(event, tx)

    async def _dead_letter(
        self,
        record: ConsumerRecord[bytes, bytes],
        headers: dict[str, str],
        error: str,
        attempts: int,
        event: Envelope | None,
    ) -> None:
        doc = dead_letter_document(
            consumer=self.consumer_name,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=(record.key or b"").decode(errors="replace"),
            value=record.value or b"",
            headers=headers,
            error=error,
            attempts=attempts,
            event_id=event.id if event else None,
            event_type=event.type if event else None,
        )

        async def work(tx: Tx) -> None:
            await record_dead_letter(tx, self.db, doc)

        await self.outbox.transaction(work)
        self._count(event.type if event else "unreadable", "dead_lettered")
        log.error("event.dead_lettered", attempts=attempts, error=error[:300])

    def _count(self, event_type: str, outcome: str) -> None:
        if self.metrics:
            self.metrics.events_consumed.labels(self.consumer_name, event_type, outcome).inc()

    def _record_lag(self, consumer: AIOKafkaConsumer, tp: TopicPartition, position: int) -> None:
        if self.metrics is None:
            return
        highwater = consumer.highwater(tp)
        if highwater is not None:
            self.metrics.consumer_lag.labels(self.consumer_name, tp.topic, tp.partition).set(
                max(0, highwater - position)
            )

    async def _close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), 10)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def stop(self) -> None:
        """Finish the record in hand, commit, leave the group."""
        self._stopping.set()
