"""The consumer runner: handled events (dedupe), dead letters, replay, replicas in one group."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from shared.consumer import ConsumerRunner, ConsumerSpec
from shared.dead_letters import DEAD_LETTERS, list_dead_letters, replay_dead_letter
from shared.events import Envelope, make_event
from shared.handled_events import HANDLED_EVENTS
from shared.kafka import dlq_topic, ensure_topics
from shared.mongo import Contended, Database, Document, ensure_indexes
from shared.outbox import Outbox, Tx
from shared.outbox_relay import OutboxRelay
from shared.service import PLATFORM_INDEXES
from shared.settings import ServiceSettings
from tests.support.events import ThingHappened
from tests.support.kafka import read_topic, wait_until

pytestmark = pytest.mark.integration
THING = ThingHappened.event_type


async def publish(bootstrap: str, topic: str, events: list[Envelope]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(
                topic,
                event.to_bytes(),
                key=event.subject.encode(),
                headers=[("x-request-id", b"req-1")],
            )
    finally:
        await producer.stop()


def counting_handler(db: Database) -> Callable[[Envelope, Tx], object]:
    async def handle(event: Envelope, tx: Tx) -> None:
        await db.effects.update_one(
            {"_id": event.data["n"]}, {"$inc": {"count": 1}}, upsert=True, session=tx.session
        )

    return handle


async def setup(
    mongo: AsyncMongoClient[Document], settings: ServiceSettings, topic: str, partitions: int
) -> Outbox:
    db = mongo[settings.database_name]
    await ensure_indexes(db, PLATFORM_INDEXES)
    await ensure_topics(settings.kafka_bootstrap, [topic], partitions=partitions)
    return Outbox(mongo, db, settings.own_topic)


async def effects(db: Database) -> dict[int, int]:
    return {d["_id"]: d["count"] async for d in db.effects.find()}


async def test_the_same_event_delivered_twice_has_one_effect(
    mongo: AsyncMongoClient[Document], make_settings: Callable[..., ServiceSettings]
) -> None:
    settings = make_settings()
    topic = f"{settings.kafka_topic_prefix}.source"
    outbox = await setup(mongo, settings, topic, partitions=1)
    spec = ConsumerSpec("effects", (topic,), {THING: counting_handler(outbox.db)})
    runner = ConsumerRunner(spec, outbox, settings)
    events = [make_event(ThingHappened(n=n), source="t", subject=f"p{n}") for n in range(5)]
    await publish(settings.kafka_bootstrap, topic, [*events, events[2], events[0], events[2]])
    task = asyncio.create_task(runner.run())
    try:
        await wait_until(lambda: _handled_and_skipped(outbox.db, 5), what="5 handled")
        await asyncio.sleep(0.5)  # give the repeats time to (not) take effect
        assert await effects(outbox.db) == {n: 1 for n in range(5)}
        assert runner.handled == 5
    finally:
        runner.stop()
        await task


async def _handled_and_skipped(db: Database, n: int) -> bool:
    return await db[HANDLED_EVENTS].count_documents({}) >= n


async def test_failing_handler_dead_letters_and_partition_moves_on_then_replay(
    mongo: AsyncMongoClient[Document], make_settings: Callable[..., ServiceSettings]
) -> None:
    settings = make_settings(consumer_max_attempts=3)
    topic = f"{settings.kafka_topic_prefix}.source"
    outbox = await setup(mongo, settings, topic, partitions=1)
    db = outbox.db
    counting = counting_handler(db)

    async def fails_on_poison(event: Envelope, tx: Tx) -> None:
        await db.attempts.update_one(
            {"_id": event.data["n"]}, {"$inc": {"count": 1}}, upsert=True
        )  # outside the tx: survives the rollback
        if event.data["note"] == "poison" and not await db.flags.find_one({"_id": "fixed"}):
            raise RuntimeError("cannot handle this one")
        await counting(event, tx)

    spec = ConsumerSpec("effects", (topic,), {THING: fails_on_poison})
    runner = ConsumerRunner(spec, outbox, settings)
    relay = OutboxRelay(outbox, settings, replica_id="relay")
    events = [
        make_event(
            ThingHappened(n=n, note="poison" if n == 1 else ""), source="t", subject="same-key"
        )
        for n in range(4)
    ]
    await publish(settings.kafka_bootstrap, topic, events)
    tasks = [asyncio.create_task(runner.run()), asyncio.create_task(relay.run())]
    try:
        await wait_until(lambda: _count(db, "effects", 3), what="the healthy events handled")
        assert await effects(db) == {0: 1, 2: 1, 3: 1}
        poison_attempts = await db.attempts.find_one({"_id": 1})
        assert poison_attempts is not None
        assert poison_attempts["count"] == 3

        dead = await list_dead_letters(db)
        assert len(dead) == 1
        assert dead[0]["event_id"] == events[1].id
        assert dead[0]["attempts"] == 3
        assert "cannot handle this one" in dead[0]["error"]
        dlq = await read_topic(
            settings.kafka_bootstrap, dlq_topic(topic, runner.consumer_name), expected=1
        )
        assert [Envelope.from_bytes(r.value or b"").id for r in dlq] == [events[1].id]
        headers = dict(dlq[0].headers)
        assert headers["x-request-id"] == b"req-1"

        await db.flags.insert_one({"_id": "fixed"})
        assert await replay_dead_letter(outbox, dead[0]["_id"])
        assert not await replay_dead_letter(outbox, dead[0]["_id"])  # only once
        await wait_until(lambda: _count(db, "effects", 4), what="the replayed event handled")
        assert await effects(db) == {0: 1, 1: 1, 2: 1, 3: 1}
        replayed = await db[DEAD_LETTERS].find_one({"_id": dead[0]["_id"]})
        assert replayed is not None
        assert replayed["status"] == "replayed"
    finally:
        runner.stop()
        relay.stop()
        await asyncio.gather(*tasks)


async def _count(db: Database, collection: str, n: int) -> bool:
    return await db[collection].count_documents({}) >= n


async def test_two_replicas_split_partitions_and_handle_each_event_once(
    mongo: AsyncMongoClient[Document], make_settings: Callable[..., ServiceSettings]
) -> None:
    settings = make_settings()
    topic = f"{settings.kafka_topic_prefix}.source"
    outbox = await setup(mongo, settings, topic, partitions=4)
    spec = ConsumerSpec("effects", (topic,), {THING: counting_handler(outbox.db)})
    runners = [ConsumerRunner(spec, outbox, settings) for _ in range(2)]
    tasks = [asyncio.create_task(r.run()) for r in runners]
    try:
        await asyncio.sleep(3)  # let both join the group before events arrive
        events = [
            make_event(ThingHappened(n=n), source="t", subject=f"patient-{n}") for n in range(200)
        ]
        await publish(settings.kafka_bootstrap, topic, events)
        await wait_until(
            lambda: _count(outbox.db, "effects", 200), timeout=40, what="all 200 handled"
        )
        await asyncio.sleep(0.5)
        assert await effects(outbox.db) == {n: 1 for n in range(200)}
        assert all(r.handled > 0 for r in runners), [r.handled for r in runners]
        assert sum(r.handled for r in runners) == 200
    finally:
        for r in runners:
            r.stop()
        await asyncio.gather(*tasks)


async def test_contention_spends_no_attempts_and_never_dead_letters(
    mongo: AsyncMongoClient[Document], make_settings: Callable[..., ServiceSettings]
) -> None:
    settings = make_settings(consumer_max_attempts=2, consumer_retry_max_seconds=0.2)
    topic = f"{settings.kafka_topic_prefix}.source"
    outbox = await setup(mongo, settings, topic, partitions=1)
    db = outbox.db
    counting = counting_handler(db)
    # event 0: contention beyond the attempts, one real failure among it, then success;
    # event 1: a real failure every time, dead-lettered after its two attempts
    script: dict[int, list[Exception]] = {
        0: [*(Contended(12) for _ in range(4)), RuntimeError("flaky"), Contended(12)],
        1: [RuntimeError("broken") for _ in range(10)],
    }

    async def handler(event: Envelope, tx: Tx) -> None:
        outcomes = script[event.data["n"]]
        if outcomes:
            raise outcomes.pop(0)
        await counting(event, tx)

    spec = ConsumerSpec("effects", (topic,), {THING: handler})
    runner = ConsumerRunner(spec, outbox, settings)
    events = [make_event(ThingHappened(n=n), source="t", subject="same-key") for n in range(2)]
    await publish(settings.kafka_bootstrap, topic, events)
    task = asyncio.create_task(runner.run())
    try:
        await wait_until(lambda: _count(db, DEAD_LETTERS, 1), what="event 1 dead-lettered")
        assert await effects(db) == {0: 1}
        assert script[0] == []
        dead = await list_dead_letters(db)
        assert [(d["event_id"], d["attempts"]) for d in dead] == [(events[1].id, 2)]
        assert runner.handled == 1
    finally:
        runner.stop()
        await task


async def test_an_open_transaction_holding_the_event_is_waited_out_not_dead_lettered(
    mongo: AsyncMongoClient[Document], make_settings: Callable[..., ServiceSettings]
) -> None:
    """A process killed mid-transaction leaves it open on the server, holding what it wrote
    (the handled-event record first of all) until the server reaps it (60 s). The next
    owner of the partition conflicts with it all that while: it must wait, not give up."""
    settings = make_settings(consumer_max_attempts=3)
    topic = f"{settings.kafka_topic_prefix}.source"
    outbox = await setup(mongo, settings, topic, partitions=1)
    db = outbox.db
    spec = ConsumerSpec("effects", (topic,), {THING: counting_handler(db)})
    runner = ConsumerRunner(spec, outbox, settings)
    event = make_event(ThingHappened(n=7), source="t", subject="p7")
    orphan = mongo.start_session()
    await orphan.start_transaction()
    await db[HANDLED_EVENTS].insert_one(
        {"_id": f"{runner.consumer_name}:{event.id}", "consumer": "killed"}, session=orphan
    )
    await publish(settings.kafka_bootstrap, topic, [event])
    task = asyncio.create_task(runner.run())
    try:
        # longer than the consumer's attempts used to last (12 conflicts x 3 attempts)
        await asyncio.sleep(8)
        assert await effects(db) == {}
        assert await db[DEAD_LETTERS].count_documents({}) == 0
        await orphan.abort_transaction()  # what the server's reaper does
        await wait_until(lambda: _count(db, "effects", 1), what="the event handled")
        assert await effects(db) == {7: 1}
        assert await db[DEAD_LETTERS].count_documents({}) == 0
    finally:
        await orphan.end_session()
        runner.stop()
        await task
