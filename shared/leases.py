"""Named leases in Mongo: at most one holder at a time; an expired lease can be taken over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pymongo.errors import DuplicateKeyError

from shared.mongo import Database


class Lease:
    """A lease on ``name`` held by ``owner`` (a replica id); calling acquire again renews it."""

    def __init__(self, db: Database, name: str, owner: str, ttl_seconds: float) -> None:
        self._leases = db["leases"]
        self.name = name
        self.owner = owner
        self.ttl = timedelta(seconds=ttl_seconds)

    async def acquire(self) -> bool:
        """Take or renew the lease; False while another live owner holds it."""
        now = datetime.now(UTC)
        try:
            doc = await self._leases.find_one_and_update(
                {"_id": self.name, "$or": [{"owner": self.owner}, {"until": {"$lt": now}}]},
                {"$set": {"owner": self.owner, "until": now + self.ttl, "renewed_at": now}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        return doc is None or doc.get("owner") == self.owner or doc.get("until", now) < now

    async def release(self) -> None:
        await self._leases.delete_one({"_id": self.name, "owner": self.owner})
