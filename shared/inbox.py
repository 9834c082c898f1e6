"""The idempotent inbox (docs/architecture.md §6): event ids a consumer has handled, uniquely
indexed.

The id is written in the same transaction as the handler's effects, so an event
redelivered after a crash or a rebalance finds its id and changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from shared.mongo import CollectionIndexes, Database, Session

INBOX = "inbox"
INBOX_RETENTION_SECONDS = 30 * 24 * 3600

INBOX_INDEXES = CollectionIndexes(
    INBOX,
    [
        IndexModel(
            [("handled_at", ASCENDING)],
            name="handled_ttl",
            expireAfterSeconds=INBOX_RETENTION_SECONDS,
        ),
    ],
)


class AlreadyHandled(Exception):
    """The event id is in the inbox: a redelivery."""


async def claim_event(
    db: Database, session: Session, consumer: str, event_id: str, event_type: str
) -> None:
    """Record the event as handled by ``consumer``; raise AlreadyHandled on a repeat."""
    try:
        await db[INBOX].insert_one(
            {
                "_id": f"{consumer}:{event_id}",
                "consumer": consumer,
                "event_type": event_type,
                "handled_at": datetime.now(UTC),
            },
            session=session,
        )
    except DuplicateKeyError as exc:
        raise AlreadyHandled(event_id) from exc


async def was_handled(db: Database, consumer: str, event_id: str) -> bool:
    return await db[INBOX].count_documents({"_id": f"{consumer}:{event_id}"}, limit=1) > 0
