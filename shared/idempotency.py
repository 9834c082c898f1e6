"""``Idempotency-Key`` for create/command POSTs (docs/architecture.md §7): a retry returns the
first result.

A key is scoped to the caller and the operation. The first request claims it (with a short
lease, so a crashed request does not hold it forever); its success response is stored in
the same transaction as its effects. A retry with the same key and body gets that stored
response; the same key with a different body is refused. Failures release the key.

A claim names the replica that holds it (``owner``). A retry that finds the key still in
progress waits briefly for the first request's answer; if the owning replica is gone
(killed between claim and commit, ``shared.replica_liveness``), the retry takes the key
over at once instead of waiting out the lease, and completes the command itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError
from redis.exceptions import RedisError

from shared.mongo import CollectionIndexes, Database, Session
from shared.problems import Conflict, Unprocessable

COLLECTION = "idempotency_keys"
RETENTION_SECONDS = 24 * 3600
INDEXES = CollectionIndexes(
    COLLECTION,
    [
        IndexModel([("created_at", ASCENDING)], name="ttl", expireAfterSeconds=RETENTION_SECONDS),
    ],
)


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict[str, Any]


def request_fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


OwnerAlive = Callable[[str], Awaitable[bool]]


class IdempotencyKeys:
    """``owner`` and ``owner_alive``: this replica's id and how to ask whether another is
    alive; ``wait_seconds``: how long a retry waits for a request still in progress."""

    def __init__(
        self,
        db: Database,
        *,
        lease_seconds: float = 30.0,
        owner: str = "",
        owner_alive: OwnerAlive | None = None,
        wait_seconds: float = 0.0,
    ) -> None:
        self.collection = db[COLLECTION]
        self.lease = timedelta(seconds=lease_seconds)
        self.owner = owner
        self.owner_alive = owner_alive
        self.wait_seconds = wait_seconds

    @staticmethod
    def validate(key: str | None) -> str | None:
        if key is None:
            return None
        if not 8 <= len(key) <= 128 or not key.isascii() or not key.isprintable():
            raise Unprocessable(
                "idempotency_key_invalid",
                "Idempotency-Key must be 8 to 128 printable ASCII characters",
            )
        return key

    async def begin(self, scope: str, key: str, fingerprint: str) -> StoredResponse | None:
        """Claim the key; return the stored response if this request was already done."""
        now = datetime.now(UTC)
        doc_id = f"{scope}:{key}"
        try:
            await self.collection.insert_one(
                {
                    "_id": doc_id,
                    "fingerprint": fingerprint,
                    "state": "in_progress",
                    "created_at": now,
                    "lease_until": now + self.lease,
                    "owner": self.owner,
                }
            )
            return None
        except DuplicateKeyError:
            existing = await self._settled(doc_id)
        if existing is None:  # released in between: try once more
            return await self.begin(scope, key, fingerprint)
        if existing["fingerprint"] != fingerprint:
            raise Unprocessable(
                "idempotency_key_reused", "this Idempotency-Key was used for a different request"
            )
        if existing["state"] == "done":
            return StoredResponse(existing["status"], existing["body"])
        now = datetime.now(UTC)
        if existing["lease_until"] > now and not await self._owner_gone(existing):
            raise Conflict(
                "idempotency_in_progress",
                "a request with this Idempotency-Key is still being processed",
                detail_zh="请求正在处理中，请稍后重试",
                headers={"Retry-After": "1"},
            )
        taken = await self.collection.update_one(
            {"_id": doc_id, "state": "in_progress", "lease_until": existing["lease_until"]},
            {"$set": {"lease_until": now + self.lease, "owner": self.owner}},
        )
        if taken.modified_count != 1:
            raise Conflict("idempotency_in_progress", "another retry took this key over")
        return None

    async def _settled(self, doc_id: str) -> dict[str, Any] | None:
        """The key's record, after waiting up to ``wait_seconds`` while it is in progress
        under a live owner (the first request's answer usually comes within that)."""
        deadline = time.monotonic() + self.wait_seconds
        while True:
            existing = await self.collection.find_one({"_id": doc_id})
            if (
                existing is None
                or existing["state"] == "done"
                or time.monotonic() >= deadline
                or await self._owner_gone(existing)
            ):
                return existing
            await asyncio.sleep(0.1)

    async def _owner_gone(self, existing: dict[str, Any]) -> bool:
        owner = existing.get("owner") or ""
        if not owner or owner == self.owner or self.owner_alive is None:
            return False
        try:
            return not await self.owner_alive(owner)
        except (RedisError, OSError):  # cannot tell: treat the owner as alive
            return False

    async def complete(
        self, scope: str, key: str, response: StoredResponse, session: Session | None = None
    ) -> None:
        await self.collection.update_one(
            {"_id": f"{scope}:{key}"},
            {"$set": {"state": "done", "status": response.status, "body": response.body}},
            session=session,
        )

    async def release(self, scope: str, key: str) -> None:
        await self.collection.delete_one({"_id": f"{scope}:{key}", "state": "in_progress"})
