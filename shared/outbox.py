"""Transactional outbox (docs/architecture.md §6): state changes and their events commit together.

A handler gets a :class:`Tx`: it writes its state with ``tx.session`` and calls
``tx.emit(event)``. :meth:`Outbox.transaction` commits both in one Mongo transaction and
wakes the relay, which publishes the pending entries in order (see ``outbox_relay``).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from pymongo import ASCENDING, AsyncMongoClient, IndexModel
from pymongo.errors import ConnectionFailure, OperationFailure

from shared.events import Envelope
from shared.mongo import (
    CollectionIndexes,
    Contended,
    Database,
    Document,
    Session,
    in_transaction,
)

T = TypeVar("T")

OUTBOX = "outbox"
WRITE_CONFLICT = 112  # mongod's WriteConflict code
SENT_RETENTION_SECONDS = 7 * 24 * 3600

OUTBOX_INDEXES = CollectionIndexes(
    OUTBOX,
    [
        IndexModel([("status", ASCENDING), ("_id", ASCENDING)], name="pending_in_order"),
        IndexModel(
            [("sent_at", ASCENDING)], name="sent_ttl", expireAfterSeconds=SENT_RETENTION_SECONDS
        ),
    ],
)


def is_contention(exc: BaseException) -> bool:
    """Whether ``exc`` says only that a transaction lost to a concurrent one (or to an open
    transaction of a crashed process, until the server reaps it): trying later will pass.

    That is :class:`~shared.mongo.Contended` (a transaction that kept conflicting), a write
    conflict, or any error labelled ``TransientTransactionError``. It is never a reason to
    give up on the work (docs/architecture.md §6).
    """
    if isinstance(exc, Contended):
        return True
    if isinstance(exc, OperationFailure) and exc.code == WRITE_CONFLICT:
        return True
    if isinstance(exc, ConnectionFailure | OperationFailure):
        return exc.has_error_label("TransientTransactionError")
    return False


@dataclass
class OutgoingMessage:
    """A raw Kafka record to publish: an event, a dead letter, or a replay."""

    id: str
    topic: str
    key: str
    value: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def to_document(self) -> Document:
        return {
            "_id": self.id,
            "topic": self.topic,
            "key": self.key,
            "value": self.value,
            "headers": self.headers,
            "status": "pending",
            "created_at": datetime.now(UTC),
            "attempts": 0,
        }


def request_headers(event: Envelope) -> dict[str, str]:
    headers = {"ce_type": event.type, "ce_id": event.id}
    if event.correlationid:
        headers["x-request-id"] = event.correlationid
    return headers


@dataclass
class Tx:
    """One unit of work: the session to write with and the messages it will publish."""

    session: Session
    default_topic: str
    messages: list[OutgoingMessage] = field(default_factory=list)
    after_commit: list[Callable[[], Any]] = field(default_factory=list)

    def emit(self, event: Envelope, *, topic: str | None = None) -> None:
        self.messages.append(
            OutgoingMessage(
                id=event.id,
                topic=topic or self.default_topic,
                key=event.subject,
                value=event.to_bytes(),
                headers=request_headers(event),
            )
        )

    def publish_raw(self, message: OutgoingMessage) -> None:
        self.messages.append(message)


class Outbox:
    """Writes outgoing messages inside the caller's transaction and wakes the relay."""

    def __init__(
        self, client: AsyncMongoClient[Document], db: Database, default_topic: str
    ) -> None:
        self.client = client
        self.db = db
        self.default_topic = default_topic
        self.wakeup = asyncio.Event()
        self._log = structlog.get_logger(__name__)

    async def transaction(self, work: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``work`` and write its emitted messages in one transaction, then wake the relay."""
        holder: list[Tx] = []

        async def run(session: Session) -> T:
            tx = Tx(session=session, default_topic=self.default_topic)
            holder[:] = [tx]
            result = await work(tx)
            if tx.messages:
                await self.db[OUTBOX].insert_many(
                    [m.to_document() for m in tx.messages], ordered=True, session=session
                )
            return result

        result = await in_transaction(self.client, run)
        tx = holder[0]
        if tx.messages:
            self.wakeup.set()
        for callback in tx.after_commit:  # e.g. cache or Redis updates that follow the commit
            outcome = callback()
            if inspect.isawaitable(outcome):
                await outcome
        return result

    async def pending_count(self) -> int:
        return await self.db[OUTBOX].count_documents({"status": "pending"})
