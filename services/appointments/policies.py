"""Booking policy per organization: stored by admins, read on every booking (briefly cached)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from services.appointments.domain.policy import DEFAULT_POLICY, BookingPolicy
from services.appointments.store import POLICIES
from shared.mongo import Database

CACHE_SECONDS = 10.0


class Policies:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, tuple[float, BookingPolicy]] = {}

    async def for_org(self, org_id: str) -> BookingPolicy:
        hit = self._cache.get(org_id)
        if hit and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        doc = await self.db[POLICIES].find_one({"_id": org_id})
        policy = BookingPolicy.model_validate(doc["policy"]) if doc else DEFAULT_POLICY
        self._cache[org_id] = (time.monotonic(), policy)
        return policy

    async def save(self, org_id: str, policy: BookingPolicy, actor: str) -> None:
        body: dict[str, Any] = policy.model_dump(mode="json")
        await self.db[POLICIES].update_one(
            {"_id": org_id},
            {"$set": {"policy": body, "updated_by": actor, "updated_at": datetime.now(UTC)}},
            upsert=True,
        )
        self._cache.pop(org_id, None)
