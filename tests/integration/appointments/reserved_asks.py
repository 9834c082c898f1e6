"""Helpers for asks another service makes of appointments' reserved (referral) pool: the
referral saga's booking asks and follow-up's revisit asks. Asks are published to the
asker's topic as that service would, consumed by the running appointments service, and
its replies read back from the appointments topic."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from redis.asyncio import Redis

from services.appointments.admission import AdmissionGate
from shared.events import Envelope
from shared.kafka import topic_name
from shared.mongo import Database, Document
from shared.settings import ServiceSettings
from tests.integration.appointments.conftest import ORG, Api
from tests.support.kafka import publish_events, wait_until


async def replies_naming(
    settings: ServiceSettings, key: str, ask_ids: set[str], *, timeout: float = 30
) -> list[Envelope]:
    """The appointments topic's replies whose ``key`` names one of ``ask_ids``, once each
    has at least one (and whatever else arrives within a short settle time)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, group_id=None
    )
    topic = topic_name(settings, "appointments")
    await consumer.start()
    found: list[Envelope] = []
    try:
        deadline = time.monotonic() + timeout
        partitions = None
        while not partitions and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                await consumer._client.force_metadata_update()
                await asyncio.sleep(0.2)
        assert partitions, f"no topic {topic}"
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        settle_until: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                for record in records:
                    event = Envelope.from_bytes(record.value or b"")
                    if event.data.get(key) in ask_ids:
                        found.append(event)
            seen = {e.data[key] for e in found}
            if seen >= ask_ids and settle_until is None:
                settle_until = time.monotonic() + 1.5
            if settle_until is not None and time.monotonic() > settle_until:
                break
        return found
    finally:
        await consumer.stop()


async def answered_in(db: Database, asks: str, ask_id: str, timeout: float = 30) -> Document:
    """The record of the answered ask ``ask_id`` in the ``asks`` collection, once there."""

    async def done() -> bool:
        return await db[asks].find_one({"_id": ask_id}) is not None

    await wait_until(done, timeout=timeout, what=f"the ask {ask_id} answered")
    doc = await db[asks].find_one({"_id": ask_id})
    assert doc is not None
    return doc


async def booking_of(db: Database, ask: Document) -> Document:
    """The appointment a booked ask made."""
    assert ask["outcome"] == "booked", ask
    booking = await db.appointments.find_one({"_id": ask["appointment_id"]})
    assert booking is not None
    return booking


async def hold_back_no_reserved_numbers(api: Api) -> None:
    """The organization's sessions published from now on have no reserved numbers."""
    policy_url = f"/v1/appointments/admin/policies/{ORG}"
    policy = (await api.client.get(policy_url, headers=api.admin)).json()
    policy["pool_shares"]["referral"] = 0.0
    saved = await api.client.put(policy_url, json=policy, headers=api.admin)
    assert saved.status_code == 200, saved.text


async def reserved_left(api: Api, schedule: str) -> int:
    """The session's free reserved (referral) numbers as admission counts them."""
    redis: Redis = Redis.from_url(api.settings.redis_url, decode_responses=True)
    try:
        gate = AdmissionGate(redis, api.settings.redis_key_prefix)
        return (await gate.remaining(schedule, ["referral"]) or {}).get("referral", -1)
    finally:
        await redis.aclose()


@dataclass(frozen=True)
class Asker:
    """A service that asks appointments for reserved-pool bookings: the topic it publishes
    its asks on, the field naming an ask on the replies, the collection answering them."""

    service: str  # "referrals" / "followup"
    key: str  # "booking_request_id" / "revisit_request_id"
    asks: str  # "referral_asks" / "revisit_asks"

    async def send(self, settings: ServiceSettings, *events: Envelope) -> None:
        await publish_events(settings, self.service, list(events))

    async def replies(
        self, settings: ServiceSettings, ask_ids: set[str], *, timeout: float = 30
    ) -> list[Envelope]:
        return await replies_naming(settings, self.key, ask_ids, timeout=timeout)

    async def answered(self, db: Database, ask_id: str, timeout: float = 30) -> Document:
        return await answered_in(db, self.asks, ask_id, timeout)
