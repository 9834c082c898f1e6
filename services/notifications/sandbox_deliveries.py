"""What the local sandbox provider "sent": read back for staff and tests."""

from __future__ import annotations

from services.notifications.store import SANDBOX
from shared.mongo import Database, Document


class SandboxDeliveries:
    def __init__(self, db: Database) -> None:
        self.collection = db[SANDBOX]

    async def find(
        self,
        *,
        patient_id: str | None = None,
        channel: str | None = None,
        kind: str | None = None,
        limit: int = 100,
    ) -> list[Document]:
        """Deliveries matching every given filter, oldest first."""
        query = {
            k: v for k, v in (("patient_id", patient_id), ("channel", channel), ("kind", kind)) if v
        }
        return await self.collection.find(query).sort("_id", 1).limit(limit).to_list()
