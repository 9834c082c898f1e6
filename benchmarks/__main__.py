"""``make bench``: platform costs as ratios against bare driver calls on the same stack.

* outbox write (state + event in one transaction) vs a bare ``insert_one``;
* relay publish throughput vs bare producer sends of the same records;
* notifications: dispatch and delivery vs a bare outbox write (``benchmarks/notifications``);
* gateway: a rate-limit decision vs a bare Redis round trip (``benchmarks/gateway``);
* followup: an HL7 discharge over MLLP, planned and acknowledged, vs a bare outbox write,
  and reading one vs python-hl7's bare parse (``benchmarks/followup``).
"""

from __future__ import annotations

import asyncio
import functools
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer

from benchmarks.followup import bench_followup
from benchmarks.gateway import bench_gateway
from benchmarks.notifications import bench_notifications
from devstack.stack import EmbeddedStack
from shared.events import EventPayload, event_type, make_event
from shared.kafka import ensure_topics
from shared.mongo import create_client, ensure_indexes
from shared.outbox import OUTBOX_INDEXES, Outbox, Tx
from shared.outbox_relay import OutboxRelay
from shared.settings import ServiceSettings

WRITES = 300
EVENTS = 3000


@event_type("bench.measured")
class Measured(EventPayload):
    n: int


async def bench(stack: EmbeddedStack) -> list[tuple[str, float, float]]:
    settings = ServiceSettings(
        service_name="bench",
        mongo_url=stack.mongo_url,
        kafka_bootstrap=stack.kafka_bootstrap,
        kafka_topic_prefix="bench",
        kafka_partitions=3,
    )
    client = create_client(stack.mongo_url, app_name="bench")
    db = client["bench"]
    await ensure_indexes(db, [OUTBOX_INDEXES])
    outbox = Outbox(client, db, settings.own_topic)

    started = time.perf_counter()
    for n in range(WRITES):
        await db.bare.insert_one({"n": n})
    bare_write = WRITES / (time.perf_counter() - started)

    async def write(tx: Tx, n: int) -> None:
        await db.state.insert_one({"n": n}, session=tx.session)
        tx.emit(make_event(Measured(n=n), source="bench", subject=f"p{n}"))

    started = time.perf_counter()
    for n in range(WRITES):
        await outbox.transaction(functools.partial(write, n=n))
    outbox_write = WRITES / (time.perf_counter() - started)
    await db.outbox.delete_many({})

    await ensure_topics(stack.kafka_bootstrap, ["bench.raw", settings.own_topic], partitions=3)
    events = [make_event(Measured(n=n), source="bench", subject=f"p{n}") for n in range(EVENTS)]
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    await producer.start()
    started = time.perf_counter()
    futures = [
        await producer.send("bench.raw", e.to_bytes(), key=e.subject.encode()) for e in events
    ]
    await asyncio.gather(*futures)
    bare_publish = EVENTS / (time.perf_counter() - started)
    await producer.stop()

    for start in range(0, EVENTS, 500):

        async def fill(tx: Tx, start: int = start) -> None:
            for e in events[start : start + 500]:
                tx.emit(e)

        await outbox.transaction(fill)
    relay = OutboxRelay(outbox, settings, replica_id="bench")
    started = time.perf_counter()
    while await relay.publish_batch():
        pass
    relay_publish = EVENTS / (time.perf_counter() - started)
    await relay.close()
    await client.close()
    return [
        ("outbox write (state+event, 1 txn) vs bare insert_one", outbox_write, bare_write),
        ("relay publish vs bare producer send", relay_publish, bare_publish),
    ]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stack = EmbeddedStack.start(Path(tmp), persistent_mongo=False)
        try:
            rows = asyncio.run(bench(stack))
            rows += asyncio.run(bench_notifications(stack))
            rows += asyncio.run(bench_gateway(stack))
            rows += asyncio.run(bench_followup(stack))
        finally:
            stack.stop()
    print(f"{'measure':<70} {'ops/s':>9} {'baseline':>9} {'ratio':>6}")
    for name, value, baseline in rows:
        print(f"{name:<70} {value:>9.0f} {baseline:>9.0f} {value / baseline:>6.2f}")


if __name__ == "__main__":
    main()
