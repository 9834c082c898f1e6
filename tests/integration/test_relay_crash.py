"""A relay killed mid-batch and restarted loses nothing; the inbox drops what it repeats."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from devstack.processes import ManagedProcess
from shared.consumer import ConsumerRunner, ConsumerSpec
from shared.events import Envelope, make_event
from shared.mongo import Document, ensure_indexes
from shared.outbox import OUTBOX, Outbox, Tx
from shared.outbox_relay import OutboxRelay
from shared.service import PLATFORM_INDEXES
from shared.settings import ServiceSettings
from tests.support.events import ThingHappened
from tests.support.kafka import read_topic, wait_until

pytestmark = pytest.mark.integration
TOTAL = 3000


async def test_relay_killed_mid_batch_loses_nothing_and_repeats_no_effect(
    mongo: AsyncMongoClient[Document], make_settings: Callable[..., ServiceSettings], tmp_path: Path
) -> None:
    settings = make_settings(outbox_batch_size=400)
    db = mongo[settings.database_name]
    await ensure_indexes(db, PLATFORM_INDEXES)
    outbox = Outbox(mongo, db, settings.own_topic)
    for start in range(0, TOTAL, 500):

        async def write(tx: Tx, start: int = start) -> None:
            for n in range(start, start + 500):
                tx.emit(make_event(ThingHappened(n=n), source="t", subject=f"p{n % 17}"))

        await outbox.transaction(write)

    worker = ManagedProcess(
        name="relay",
        argv=[sys.executable, "-m", "tests.support.relay_worker", settings.model_dump_json()],
        port=0,
        log_path=tmp_path / "relay.log",
        cwd=Path(__file__).parents[2],
    )
    worker.start(wait=False)
    await wait_until(lambda: _sent_at_least(db, 1), timeout=30, what="first batch marked sent")
    worker.kill()  # SIGKILL while the following batches are in flight
    pending_after_crash = await outbox.pending_count()
    assert 0 < pending_after_crash < TOTAL

    async def count(event: Envelope, tx: Tx) -> None:
        await db.effects.update_one(
            {"_id": event.data["n"]}, {"$inc": {"count": 1}}, upsert=True, session=tx.session
        )

    spec = ConsumerSpec("counter", (settings.own_topic,), {ThingHappened.event_type: count})
    # the lease of the killed relay expires; a new replica takes over and finishes
    relay = OutboxRelay(outbox, settings, replica_id="successor")
    consumer = ConsumerRunner(spec, outbox, settings)
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(consumer.run())]
    try:
        await wait_until(lambda: _none_pending(outbox), timeout=120, what="outbox drained")
        await wait_until(lambda: _effects(db, TOTAL), timeout=120, what="every event handled")
        await asyncio.sleep(1.0)
        counts = [d["count"] async for d in db.effects.find()]
        assert len(counts) == TOTAL
        assert set(counts) == {1}
        records = await read_topic(settings.kafka_bootstrap, settings.own_topic, expected=TOTAL)
        assert len({Envelope.from_bytes(r.value or b"").id for r in records}) == TOTAL
        assert await db[OUTBOX].count_documents({"status": "sent"}) == TOTAL
    finally:
        relay.stop()
        consumer.stop()
        await asyncio.gather(*tasks)


async def _sent_at_least(db: object, n: int) -> bool:
    return await db[OUTBOX].count_documents({"status": "sent"}) >= n  # type: ignore[index,no-any-return]


async def _none_pending(outbox: Outbox) -> bool:
    return await outbox.pending_count() == 0


async def _effects(db: object, n: int) -> bool:
    return await db.effects.count_documents({}) >= n  # type: ignore[attr-defined,no-any-return]
