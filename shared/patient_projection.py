"""How a service projects ``patient.registered`` into its own patients collection.

The event names the account that added the patient; a record registered by hotline or
counter staff has no account yet (``account_id`` null): the patient is known, managed by
no account until one adds them by the texted code.
"""

from __future__ import annotations

from typing import Any


def registration_update(account_id: str | None, fields: dict[str, Any]) -> dict[str, Any]:
    """The update (with upsert) of a patient's projection for ``patient.registered``."""
    update: dict[str, Any] = {"$set": fields}
    if account_id:
        update["$addToSet"] = {"account_ids": account_id}
    else:
        update["$setOnInsert"] = {"account_ids": []}
    return update
