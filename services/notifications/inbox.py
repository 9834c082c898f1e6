"""The in-app inbox: items per account, unread counts, and a live stream.

An item is written in the same transaction as its message. After the commit, a Redis
publish on the account's channel wakes every open stream of that account, on any replica;
the stream then reads Mongo for items after the last one it sent, so a lost wake-up costs
at most one heartbeat of delay and never an item.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.notifications.store import INBOX
from shared.mongo import Database, Document
from shared.outbox import Tx

log = structlog.get_logger(__name__)


class InboxItem(BaseModel):
    id: str
    patient_id: str | None
    kind: str
    title: str
    body: str
    page: str | None = None
    created_at: datetime
    read_at: datetime | None = None


def to_item(doc: Document) -> InboxItem:
    return InboxItem(
        id=doc["_id"],
        patient_id=doc.get("patient_id"),
        kind=doc["kind"],
        title=doc["title"],
        body=doc["body"],
        page=doc.get("page"),
        created_at=doc["created_at"],
        read_at=doc.get("read_at"),
    )


class Inbox:
    def __init__(self, db: Database, redis: Redis, key_prefix: str) -> None:
        self.collection = db[INBOX]
        self.redis = redis
        self.prefix = key_prefix

    def channel(self, account_id: str) -> str:
        return f"{self.prefix}notifications:inbox:{account_id}"

    async def add(self, tx: Tx, item: Document) -> None:
        await self.collection.insert_one(item, session=tx.session)
        account_id = item["account_id"]
        tx.after_commit.append(lambda: self._wake(account_id, item["_id"]))

    async def _wake(self, account_id: str, item_id: str) -> None:
        try:
            await self.redis.publish(self.channel(account_id), item_id)
        except RedisError as exc:  # streams catch up at their next heartbeat
            log.warning("inbox.wake_failed", error=str(exc))

    async def page(
        self, account_id: str, *, limit: int, before: str | None = None, unread_only: bool = False
    ) -> list[InboxItem]:
        query: dict[str, Any] = {"account_id": account_id}
        if before:
            query["_id"] = {"$lt": before}
        if unread_only:
            query["read_at"] = None
        docs = await self.collection.find(query).sort("_id", -1).limit(limit).to_list()
        return [to_item(d) for d in docs]

    async def after(self, account_id: str, last_id: str, limit: int = 100) -> list[InboxItem]:
        query: dict[str, Any] = {"account_id": account_id}
        if last_id:  # SecantusDB finds nothing for {"$gt": ""}
            query["_id"] = {"$gt": last_id}
        docs = await self.collection.find(query).sort("_id", 1).limit(limit).to_list()
        return [to_item(d) for d in docs]

    async def unread(self, account_id: str) -> int:
        return await self.collection.count_documents({"account_id": account_id, "read_at": None})

    async def mark_read(self, account_id: str, ids: list[str] | None) -> int:
        query: dict[str, Any] = {"account_id": account_id, "read_at": None}
        if ids is not None:
            query["_id"] = {"$in": ids}
        result = await self.collection.update_many(query, {"$set": {"read_at": datetime.now(UTC)}})
        return result.modified_count

    async def newest_id(self, account_id: str) -> str:
        doc = await self.collection.find_one({"account_id": account_id}, sort=[("_id", -1)])
        return str(doc["_id"]) if doc else ""

    async def stream(
        self, account_id: str, last_id: str | None, *, heartbeat: float
    ) -> AsyncIterator[str]:
        """Server-sent events: every new item of the account, then heartbeats while idle.

        Subscribes before reading, so an item committed meanwhile is not missed; resumes
        after ``last_id`` (the ``Last-Event-ID`` header) when the client reconnects.
        """
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(self.channel(account_id))
        try:
            cursor = last_id if last_id is not None else await self.newest_id(account_id)
            yield "retry: 3000\n\n"
            yield f"event: ready\ndata: {json.dumps({'last_id': cursor})}\n\n"
            loop = asyncio.get_running_loop()
            idle_since = loop.time()
            while True:
                for item in await self.after(account_id, cursor):
                    cursor = item.id
                    yield f"id: {item.id}\nevent: message\ndata: {item.model_dump_json()}\n\n"
                    idle_since = loop.time()
                woke = await _wait(pubsub, min(heartbeat, 1.0))
                if not woke and loop.time() - idle_since >= heartbeat:
                    yield ": heartbeat\n\n"
                    idle_since = loop.time()
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]


async def _wait(pubsub: Any, timeout: float) -> bool:
    try:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
    except (RedisError, TimeoutError) as exc:
        log.warning("inbox.stream_wait_failed", error=str(exc))
        await asyncio.sleep(timeout)
        return False
    return message is not None
