"""Test helpers that read Kafka directly, as an outside observer would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from shared.events import Envelope
from shared.kafka import topic_name
from shared.outbox import request_headers
from shared.settings import ServiceSettings


async def read_topic(
    bootstrap: str, topic: str, *, expected: int, timeout: float = 20.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` from the beginning, once at least ``expected`` have arrived."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        partitions: set[int] | None = None
        while partitions is None and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                await consumer._client.force_metadata_update()
                await asyncio.sleep(0.2)
        assert partitions, f"topic {topic} does not exist"
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[ConsumerRecord[bytes, bytes]] = []
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for tp_records in batch.values():
                records.extend(tp_records)
        return records
    finally:
        await consumer.stop()


async def wait_until(
    predicate: Callable[[], Awaitable[bool]],
    *,
    timeout: float = 20.0,
    interval: float = 0.1,
    what: str = "condition",
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def publish_events(settings: ServiceSettings, service: str, events: list[Envelope]) -> None:
    """Publish ``events`` on ``service``'s topic as that service's relay would (key, headers)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(
                topic_name(settings, service),
                event.to_bytes(),
                key=event.subject.encode(),
                headers=[(k, v.encode()) for k, v in request_headers(event).items()],
            )
    finally:
        await producer.stop()
