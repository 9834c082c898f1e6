"""Staff notices of referral changes (``domain/notices.py`` says who is told of what).

A notice is written in the same transaction as the change it tells of; a doctor reads the
notices addressed to them, a coordinator those of their organization's coordinators.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.referrals.domain.notices import notices_for
from services.referrals.store import NOTICES
from shared.ids import new_id
from shared.mongo import Database, Document
from shared.outbox import Tx
from shared.principal import Principal, Role


async def write_notices(db: Database, tx: Tx, action: str, case: Document) -> None:
    notices = notices_for(action, case)
    if not notices:
        return
    now = datetime.now(UTC)
    await db[NOTICES].insert_many(
        [
            {"_id": new_id(), **n.to_document(case), "created_at": now, "read_at": None}
            for n in notices
        ],
        session=tx.session,
    )


def audience(principal: Principal) -> dict[str, Any] | None:
    """Whose notices the caller reads: a doctor theirs, a coordinator their organization's
    coordinators'. ``None``: none (no organization)."""
    if principal.org_id is None:
        return None
    if Role.COORDINATOR in principal.roles:
        return {"org_id": principal.org_id, "doctor_id": None}
    return {"org_id": principal.org_id, "doctor_id": principal.subject}


class Notices:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list_for(
        self, principal: Principal, *, unread_only: bool, limit: int
    ) -> list[dict[str, Any]]:
        query = audience(principal)
        if query is None:
            return []
        if unread_only:
            query["read_at"] = None
        cursor = self.db[NOTICES].find(query).sort("created_at", -1).limit(limit)
        return [{"id": d.pop("_id"), **d} async for d in cursor]

    async def mark_read(self, principal: Principal, ids: list[str]) -> int:
        """Marks the caller's own notices read; others' ids are ignored (counted out)."""
        query = audience(principal)
        if query is None or not ids:
            return 0
        result = await self.db[NOTICES].update_many(
            {**query, "_id": {"$in": ids}, "read_at": None},
            {"$set": {"read_at": datetime.now(UTC)}},
        )
        return result.modified_count
