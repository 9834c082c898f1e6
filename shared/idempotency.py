"""``Idempotency-Key`` for create/command POSTs (docs/architecture.md §7): a retry returns the
first result.

A key is scoped to the caller and the operation. The first request claims it (with a short
lease, so a crashed request does not hold it forever); its success response is stored in
the same transaction as its effects. A retry with the same key and body gets that stored
response; the same key with a different body is refused. Failures release the key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

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


class IdempotencyKeys:
    def __init__(self, db: Database, *, lease_seconds: float = 30.0) -> None:
        self.collection = db[COLLECTION]
        self.lease = timedelta(seconds=lease_seconds)

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
                }
            )
            return None
        except DuplicateKeyError:
            existing = await self.collection.find_one({"_id": doc_id})
        if existing is None:  # released in between: try once more
            return await self.begin(scope, key, fingerprint)
        if existing["fingerprint"] != fingerprint:
            raise Unprocessable(
                "idempotency_key_reused", "this Idempotency-Key was used for a different request"
            )
        if existing["state"] == "done":
            return StoredResponse(existing["status"], existing["body"])
        if existing["lease_until"] > now:
            raise Conflict(
                "idempotency_in_progress",
                "a request with this Idempotency-Key is still being processed",
                detail_zh="请求正在处理中，请稍后重试",
            )
        taken = await self.collection.update_one(
            {"_id": doc_id, "state": "in_progress", "lease_until": existing["lease_until"]},
            {"$set": {"lease_until": now + self.lease}},
        )
        if taken.modified_count != 1:
            raise Conflict("idempotency_in_progress", "another retry took this key over")
        return None

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
