"""Dead letters: events a consumer gave up on, kept for operators to list and replay.

A dead letter is written in one transaction with its outbox entry for the
``<topic>.dlq.<consumer>`` topic, so the record in Mongo and the record on Kafka agree.
Replaying publishes the original record again to its topic, through the outbox.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

from shared.ids import new_id
from shared.kafka import dlq_topic
from shared.mongo import CollectionIndexes, Database, Document
from shared.outbox import Outbox, OutgoingMessage, Tx

DEAD_LETTERS = "dead_letters"

DEAD_LETTER_INDEXES = CollectionIndexes(
    DEAD_LETTERS,
    [
        IndexModel([("status", ASCENDING), ("failed_at", DESCENDING)], name="status_time"),
    ],
)


def dead_letter_document(
    *,
    consumer: str,
    topic: str,
    partition: int,
    offset: int,
    key: str,
    value: bytes,
    headers: dict[str, str],
    error: str,
    attempts: int,
    event_id: str | None,
    event_type: str | None,
) -> Document:
    return {
        "_id": new_id(),
        "consumer": consumer,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key,
        "value": value,
        "headers": headers,
        "error": error[:2000],
        "attempts": attempts,
        "event_id": event_id,
        "event_type": event_type,
        "status": "dead",
        "failed_at": datetime.now(UTC),
    }


async def record_dead_letter(tx: Tx, db: Database, doc: Document) -> None:
    """Store the dead letter and publish it to the consumer's DLQ topic, atomically."""
    await db[DEAD_LETTERS].insert_one(doc, session=tx.session)
    tx.publish_raw(
        OutgoingMessage(
            id=f"dlq:{doc['_id']}",
            topic=dlq_topic(doc["topic"], doc["consumer"]),
            key=doc["key"],
            value=doc["value"],
            headers={
                **doc["headers"],
                "dlq_error": doc["error"][:500],
                "dlq_consumer": doc["consumer"],
                "dlq_attempts": str(doc["attempts"]),
            },
        )
    )


async def list_dead_letters(
    db: Database, *, status: str = "dead", limit: int = 50, after_id: str | None = None
) -> list[Document]:
    query: dict[str, Any] = {"status": status}
    if after_id:
        query["_id"] = {"$gt": after_id}
    cursor = db[DEAD_LETTERS].find(query, {"value": 0}).sort("_id", 1).limit(limit)
    return await cursor.to_list()


async def replay_dead_letter(outbox: Outbox, dead_letter_id: str) -> bool:
    """Publish the original record again to its topic; False if there is no such dead letter."""
    db = outbox.db

    async def work(tx: Tx) -> bool:
        doc = await db[DEAD_LETTERS].find_one_and_update(
            {"_id": dead_letter_id, "status": "dead"},
            {"$set": {"status": "replayed", "replayed_at": datetime.now(UTC)}},
            session=tx.session,
        )
        if doc is None:
            return False
        tx.publish_raw(
            OutgoingMessage(
                id=f"replay:{new_id()}",
                topic=doc["topic"],
                key=doc["key"],
                value=bytes(doc["value"]),
                headers=dict(doc.get("headers", {})),
            )
        )
        return True

    return await outbox.transaction(work)
