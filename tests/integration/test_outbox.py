"""The transactional outbox and its relay against real SecantusDB and Tansu."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from devstack.processes import free_port
from devstack.stack import kafka_process
from shared.events import Envelope, make_event
from shared.mongo import Document, ensure_indexes
from shared.outbox import OUTBOX, OUTBOX_INDEXES, Outbox, Tx
from shared.outbox_relay import OutboxRelay
from shared.settings import ServiceSettings
from tests.support.events import ThingHappened
from tests.support.kafka import read_topic, wait_until

pytestmark = pytest.mark.integration


class Boom(Exception):
    pass


def thing(n: int, subject: str = "patient-1") -> Envelope:
    return make_event(ThingHappened(n=n), source="testsvc", subject=subject)


async def test_state_and_event_commit_together_or_not_at_all(
    mongo: AsyncMongoClient[Document], make_settings: Callable[..., ServiceSettings]
) -> None:
    settings = make_settings()
    db = mongo[settings.database_name]
    await ensure_indexes(db, [OUTBOX_INDEXES])
    outbox = Outbox(mongo, db, settings.own_topic)

    async def succeed(tx: Tx) -> None:
        await db.things.insert_one({"_id": "kept"}, session=tx.session)
        tx.emit(thing(1))

    async def fail(tx: Tx) -> None:
        await db.things.insert_one({"_id": "rolled-back"}, session=tx.session)
        tx.emit(thing(2))
        raise Boom

    await outbox.transaction(succeed)
    with pytest.raises(Boom):
        await outbox.transaction(fail)

    assert await db.things.distinct("_id") == ["kept"]
    entries = await db[OUTBOX].find().to_list()
    assert len(entries) == 1
    assert json.loads(entries[0]["value"])["data"]["n"] == 1
    assert entries[0]["status"] == "pending"


async def test_writes_succeed_while_broker_is_down_and_publish_in_order_after(
    mongo: AsyncMongoClient[Document], make_settings: Callable[..., ServiceSettings], tmp_path: Path
) -> None:
    broker = kafka_process(free_port(), tmp_path).start()
    bootstrap = f"127.0.0.1:{broker.port}"
    settings = make_settings(
        kafka_bootstrap=bootstrap, kafka_partitions=1, outbox_backoff_max_seconds=0.5
    )
    db = mongo[settings.database_name]
    await ensure_indexes(db, [OUTBOX_INDEXES])
    outbox = Outbox(mongo, db, settings.own_topic)
    relay = OutboxRelay(outbox, settings, replica_id="relay-a")
    relay_task = asyncio.create_task(relay.run())
    try:
        broker.stop()  # the broker goes away; requests must not notice
        loop = asyncio.get_running_loop()
        for n in range(30):
            started = loop.time()
            await outbox.transaction(lambda tx, n=n: _emit(tx, n))
            assert loop.time() - started < 1.0, "a write waited on the broker"
        await asyncio.sleep(1.0)
        assert await outbox.pending_count() == 30  # nothing could be published

        broker.start()  # back, empty (memory storage): the relay recreates the topic
        await wait_until(lambda: _none_pending(outbox), timeout=30, what="outbox drained")
        records = await read_topic(bootstrap, settings.own_topic, expected=30)
        numbers = [Envelope.from_bytes(r.value or b"").data["n"] for r in records]
        assert numbers == list(range(30))
        assert all(r.key == b"patient-1" for r in records)
    finally:
        relay.stop()
        await relay_task
        broker.stop()


async def _emit(tx: Tx, n: int) -> None:
    tx.emit(thing(n))


async def _none_pending(outbox: Outbox) -> bool:
    return await outbox.pending_count() == 0


async def test_only_one_relay_replica_publishes_at_a_time(
    mongo: AsyncMongoClient[Document], make_settings: Callable[..., ServiceSettings]
) -> None:
    settings = make_settings(kafka_partitions=1)
    db = mongo[settings.database_name]
    await ensure_indexes(db, [OUTBOX_INDEXES])
    outbox = Outbox(mongo, db, settings.own_topic)
    for n in range(40):
        await outbox.transaction(lambda tx, n=n: _emit(tx, n))
    relays = [OutboxRelay(outbox, settings, replica_id=f"relay-{i}") for i in range(2)]
    tasks = [asyncio.create_task(r.run()) for r in relays]
    try:
        await wait_until(lambda: _none_pending(outbox), what="outbox drained")
        records = await read_topic(settings.kafka_bootstrap, settings.own_topic, expected=40)
        assert [Envelope.from_bytes(r.value or b"").data["n"] for r in records] == list(range(40))
        assert sorted(r.published for r in relays) == [0, 40]
    finally:
        for r in relays:
            r.stop()
        await asyncio.gather(*tasks)
