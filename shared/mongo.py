"""MongoDB (PyMongo async): client factory, transactions and index bootstrap.

Motor is end-of-life (2026-05-14); PyMongo's async API is the driver.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import CollectionInvalid, ConnectionFailure, OperationFailure

Document = dict[str, Any]
Database = AsyncDatabase[Document]
Session = AsyncClientSession
T = TypeVar("T")


def create_client(url: str, *, app_name: str) -> AsyncMongoClient[Document]:
    """A client; it connects lazily, so building one in a lifespan costs nothing."""
    return AsyncMongoClient(
        url,
        appname=app_name,
        tz_aware=True,
        serverSelectionTimeoutMS=5000,
        uuidRepresentation="standard",
    )


async def in_transaction(
    client: AsyncMongoClient[Document],
    work: Callable[[Session], Awaitable[T]],
    *,
    max_retries: int = 12,
) -> T:
    """Run ``work(session)`` in one transaction; retry it on transient transaction errors.

    Everything ``work`` writes with the session commits together or not at all. Write
    conflicts between concurrent transactions are retried after a short random pause
    (growing with each attempt), so a burst on one document drains instead of failing;
    after ``max_retries`` the caller gets :class:`Contended`.
    """
    attempt = 0
    while True:
        attempt += 1
        async with client.start_session() as session:
            try:
                async with await session.start_transaction():
                    return await work(session)
            except (ConnectionFailure, OperationFailure) as exc:
                transient = exc.has_error_label("TransientTransactionError") or exc.has_error_label(
                    "UnknownTransactionCommitResult"
                )
                if not transient:
                    raise
                if attempt >= max_retries:
                    raise Contended(attempt) from exc
        await asyncio.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))  # noqa: S311


class Contended(Exception):
    """A transaction kept conflicting with concurrent ones; the caller may try later."""

    def __init__(self, attempts: int) -> None:
        super().__init__(f"transaction conflicted {attempts} times")
        self.attempts = attempts


@dataclass(frozen=True)
class CollectionIndexes:
    """The indexes one collection needs."""

    collection: str
    indexes: list[IndexModel] = field(default_factory=list)


async def ensure_indexes(db: Database, specs: Iterable[CollectionIndexes]) -> None:
    """Create collections and their indexes (idempotent; run at start-up)."""
    existing = set(await db.list_collection_names())
    for spec in specs:
        if spec.collection not in existing:
            try:
                await db.create_collection(spec.collection)
            except CollectionInvalid:  # created by a replica starting at the same time
                pass  # (PyMongo checks the name first and raises this, not the server's 48)
            except OperationFailure as exc:
                if exc.code != 48:  # NamespaceExists, from the server itself
                    raise
        if spec.indexes:
            await db[spec.collection].create_indexes(spec.indexes)


async def ping(client: AsyncMongoClient[Document]) -> None:
    await client.admin.command("ping")
