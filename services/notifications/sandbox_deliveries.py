"""What the local sandbox provider "sent": read back for staff and tests."""

from __future__ import annotations

from typing import Any

from services.notifications.store import MESSAGES, SANDBOX
from shared.mongo import Database, Document

MAX_ORG_MESSAGES = 5000  # an organization's admin looks at its newest messages' deliveries


class SandboxDeliveries:
    def __init__(self, db: Database) -> None:
        self.collection = db[SANDBOX]
        self.messages = db[MESSAGES]

    async def find(
        self,
        *,
        patient_id: str | None = None,
        channel: str | None = None,
        kind: str | None = None,
        limit: int = 100,
        org_id: str | None = None,
    ) -> list[Document]:
        """Deliveries matching every given filter, oldest first. With ``org_id`` only those
        of messages that organization sent (an organization's admin: a login code or another
        organization's message is not theirs to read)."""
        query: dict[str, Any] = {
            k: v for k, v in (("patient_id", patient_id), ("channel", channel), ("kind", kind)) if v
        }
        if org_id is not None:
            ids = (
                await self.messages.find({"org_id": org_id, **query}, {"_id": 1})
                .sort("_id", -1)
                .limit(MAX_ORG_MESSAGES)
                .to_list()
            )
            query["message_id"] = {"$in": [m["_id"] for m in ids]}
        return await self.collection.find(query).sort("_id", 1).limit(limit).to_list()
