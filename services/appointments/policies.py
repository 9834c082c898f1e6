"""Booking policy per organization: stored by admins, read on every booking (briefly cached)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import ValidationError

from services.appointments.domain.policy import DEFAULT_POLICY, BookingPolicy, inconsistencies
from services.appointments.store import POLICIES
from shared.mongo import Database
from shared.problems import FieldError, Unprocessable

CACHE_SECONDS = 10.0
log = structlog.get_logger(__name__)


def check_applicable(policy: BookingPolicy, org_id: str) -> None:
    """Refuse (422 ``policy_invalid``, naming the fields) a policy that cannot be applied."""
    problems = inconsistencies(policy, org_id)
    if problems:
        raise Unprocessable(
            "policy_invalid",
            "the policy cannot be applied; see errors for the fields to fix",
            errors=[FieldError(field=f"body.{f}", message=m) for f, m in problems],
        )


class Policies:
    """``on_change`` tells the other replicas (through the admission cache's policy
    version, read with every booking attempt) that their cached policies are stale."""

    def __init__(
        self, db: Database, on_change: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self.db = db
        self.on_change = on_change
        self._cache: dict[str, tuple[float, int | None, BookingPolicy]] = {}

    async def for_org(self, org_id: str, *, version: int | None = None) -> BookingPolicy:
        """The organization's policy; with ``version`` (the policy version from Redis) a
        cached one is used only if it was read under that same version."""
        hit = self._cache.get(org_id)
        if (
            hit
            and time.monotonic() - hit[0] < CACHE_SECONDS
            and (version is None or hit[1] == version)
        ):
            return hit[2]
        doc = await self.db[POLICIES].find_one({"_id": org_id})
        policy = DEFAULT_POLICY
        if doc is not None:
            try:
                policy = BookingPolicy.model_validate(doc["policy"])
            except ValidationError as exc:  # stored before policies were checked on write
                fields = [".".join(map(str, e["loc"])) for e in exc.errors()]
                log.error("appointments.policy_unusable", org_id=org_id, fields=fields)
        self._cache[org_id] = (time.monotonic(), version, policy)
        return policy

    async def save(self, org_id: str, policy: BookingPolicy, actor: str) -> None:
        check_applicable(policy, org_id)
        body: dict[str, Any] = policy.model_dump(mode="json")
        await self.db[POLICIES].update_one(
            {"_id": org_id},
            {"$set": {"policy": body, "updated_by": actor, "updated_at": datetime.now(UTC)}},
            upsert=True,
        )
        self._cache.pop(org_id, None)
        if self.on_change is not None:
            await self.on_change()
