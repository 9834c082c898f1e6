"""Concurrent transactions over the same records end in one effect each, never a dead letter."""

from __future__ import annotations

import asyncio
import random

from aiokafka import ConsumerRecord

from services.notifications import handlers
from services.notifications.handlers import consumers
from services.notifications.store import INBOX
from shared.consumer import ConsumerRunner
from shared.dead_letters import DEAD_LETTERS
from shared.events import Envelope
from shared.handled_events import HandledEvents
from shared.outbox import Tx, request_headers
from tests.integration.notifications.conftest import NotificationsApi, booked, facts


def as_record(event: Envelope, topic: str, offset: int) -> ConsumerRecord[bytes, bytes]:
    value = event.to_bytes()
    return ConsumerRecord(
        topic=topic,
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=event.subject.encode(),
        value=value,
        checksum=None,
        serialized_key_size=len(event.subject),
        serialized_value_size=len(value),
        headers=[(k, v.encode()) for k, v in request_headers(event).items()],
    )


async def test_fifty_bookings_of_one_patient_each_delivered_twice_at_once(
    notifications_api: NotificationsApi,
) -> None:
    """Each booked event reaches the consumer twice at the same moment (a redelivery racing
    the first delivery, as after a rebalance), all 100 concurrently: both copies write the
    same handled-event record, so one waits for the other. Every event ends with exactly one
    inbox item and one message per channel; nothing is dead-lettered. (Concurrent events
    of one patient share no document: dispatch writes only records of their own.)"""
    api = notifications_api
    runtime = api.ctx.runtime
    patient_id, account_id, _ = await api.register_patient()
    events = [booked(facts(patient_id, account_id)) for _ in range(50)]
    topic = f"{api.settings.kafka_topic_prefix}.appointments"
    records = [as_record(e, topic, n) for n, e in enumerate(events)] * 2
    random.Random(7).shuffle(records)
    runner = ConsumerRunner(consumers(runtime)[0], runtime.outbox, api.settings)

    await asyncio.gather(*(runner.handle_record(r) for r in records))

    db = runtime.db
    assert await db[DEAD_LETTERS].count_documents({}) == 0
    assert runner.handled == 50
    items = await db[INBOX].find({"account_id": account_id}).to_list()
    assert sorted(i["dedupe"] for i in items) == sorted(
        f"{e.id}:appointment.booked:inbox" for e in events
    )
    msgs = await api.messages(patient_id=patient_id, kind="appointment.booked")
    assert len(msgs) == 50 * 3  # inbox, wechat (suppressed: no openid), sms
    assert len({m["dedupe"] for m in msgs}) == len(msgs)


async def test_a_booking_held_by_a_killed_consumers_open_transaction_is_handled_once_later(
    notifications_api: NotificationsApi,
) -> None:
    """The contention seen under SIGKILLs: a consumer killed mid-transaction leaves it open
    on the server (SecantusDB and mongod reap it after 60 s), holding the event's
    handled-event record, its dispatch and its messages. The partition's next owner
    conflicts with it on every try until then: it must wait, not dead-letter the event."""
    api = notifications_api
    runtime = api.ctx.runtime
    patient_id, account_id, _ = await api.register_patient()
    event = booked(facts(patient_id, account_id))
    orphan = runtime.mongo.start_session()
    await orphan.start_transaction()
    tx = Tx(session=orphan, default_topic=api.settings.own_topic)
    await HandledEvents(runtime.db).record(orphan, "notifications.events", event.id, event.type)
    await handlers.booked(api.ctx, event, tx)  # the killed replica's work, never committed

    await api.publish(event)
    await asyncio.sleep(8)  # longer than the consumer's attempts used to last
    db = runtime.db
    assert await db[DEAD_LETTERS].count_documents({}) == 0
    assert await db[INBOX].count_documents({"account_id": account_id}) == 0
    await orphan.abort_transaction()  # the server's reaper
    await orphan.end_session()

    sms = await api.wait_for_sandbox(1, patient_id=patient_id, channel="sms")
    assert len(sms) == 1
    assert await db[INBOX].count_documents({"account_id": account_id}) == 1
    assert await db[DEAD_LETTERS].count_documents({}) == 0
