"""Handled events (docs/architecture.md §6): the event ids a consumer has handled, uniquely
indexed, so a redelivered event changes nothing.

The id is written in the same transaction as the handler's effects, so an event
redelivered after a crash or a rebalance finds its id and changes nothing. (Not the
patient's in-app inbox: that is notifications' ``inbox_items``.)
"""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from shared.mongo import CollectionIndexes, Database, Session

# The collection's stored name predates the module's rename and is kept, so no data moves.
HANDLED_EVENTS = "inbox"
HANDLED_EVENTS_RETENTION_SECONDS = 30 * 24 * 3600

HANDLED_EVENTS_INDEXES = CollectionIndexes(
    HANDLED_EVENTS,
    [
        IndexModel(
            [("handled_at", ASCENDING)],
            name="handled_ttl",
            expireAfterSeconds=HANDLED_EVENTS_RETENTION_SECONDS,
        ),
    ],
)


class AlreadyHandled(Exception):
    """The consumer has handled this event id already: a redelivery."""


class HandledEvents:
    """The handled-event records of one service's consumers."""

    def __init__(self, db: Database) -> None:
        self.collection = db[HANDLED_EVENTS]

    async def record(self, session: Session, consumer: str, event_id: str, event_type: str) -> None:
        """Record the event as handled by ``consumer``; raise AlreadyHandled on a repeat."""
        try:
            await self.collection.insert_one(
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
