"""Message documents: one per source, kind and channel, with every attempt and its status.

Statuses: ``queued`` (waiting for its send time or a retry), ``sending`` (an attempt is
recorded as begun, under ``sending.attempt_id``, before the provider is called), ``sent``
(the provider took it), ``delivered``, ``failed`` (the channel gave up), ``suppressed`` (not
sent, and why: channel_off, no_address, no_consent), ``expired`` (no longer useful when its
time came), ``unknown`` (an attempt died between the provider call and its record, and the
provider cannot tell what became of it: not sent again, see ``delivery``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from services.notifications.store import MESSAGES
from shared.ids import new_id
from shared.mongo import Database, Document, Session


class Status(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


FINAL = frozenset(
    {Status.DELIVERED, Status.FAILED, Status.SUPPRESSED, Status.EXPIRED, Status.UNKNOWN}
)


@dataclass(frozen=True)
class Source:
    """What a message is about: the event (or timed job, or request) that caused it."""

    id: str  # event id, reminder key or request id: with kind and channel, the dedupe key
    event_type: str | None
    patient_id: str | None
    account_id: str | None
    org_id: str | None = None


def dedupe_key(source: Source, kind: str, channel: str) -> str:
    return f"{source.id}:{kind}:{channel}"


def new_message(
    source: Source,
    *,
    kind: str,
    channel: str,
    status: Status,
    language: str,
    context: dict[str, Any],
    chain: list[str],
    now: datetime,
    due_at: datetime | None = None,
    expires_at: datetime | None = None,
    reason: str | None = None,
    address_masked: str | None = None,
    address_enc: str | None = None,
) -> Document:
    return {
        "_id": new_id(),
        "dedupe": dedupe_key(source, kind, channel),
        "source_id": source.id,
        "source_event_type": source.event_type,
        "kind": kind,
        "channel": channel,
        "patient_id": source.patient_id,
        "account_id": source.account_id,
        "org_id": source.org_id,
        "language": language,
        "context": context,
        "chain": chain,
        "status": status.value,
        "reason": reason,
        "due_at": due_at,
        "expires_at": expires_at,
        "address_masked": address_masked,
        "address_enc": address_enc,
        "attempts": [],
        "created_at": now,
        "updated_at": now,
    }


def message_facts(msg: Document, **extra: Any) -> dict[str, Any]:
    """The fields every ``notification.*`` event carries about a message (no address)."""
    return {
        "message_id": msg["_id"],
        "kind": msg["kind"],
        "channel": msg["channel"],
        "patient_id": msg.get("patient_id"),
        "account_id": msg.get("account_id"),
        "source_event_id": msg.get("source_id") if msg.get("source_event_type") else None,
        "source_event_type": msg.get("source_event_type"),
        **extra,
    }


def event_subject(msg: Document) -> str:
    """The Kafka key of a message's events: its patient, else the message itself."""
    return str(msg.get("patient_id") or msg["_id"])


class MessageView(BaseModel):
    """A message as patients and staff see it: the address masked, no template context."""

    id: str
    kind: str
    channel: str
    status: str
    reason: str | None = None
    patient_id: str | None = None
    address_masked: str | None = None
    language: str
    provider: str | None = None
    attempts: int
    last_error: str | None = None
    template_version: int | None = None
    due_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


def to_view(doc: Document) -> MessageView:
    attempts = doc.get("attempts", [])
    errors = [a.get("error") for a in attempts if a.get("error")]
    return MessageView(
        id=doc["_id"],
        kind=doc["kind"],
        channel=doc["channel"],
        status=doc["status"],
        reason=doc.get("reason"),
        patient_id=doc.get("patient_id"),
        address_masked=doc.get("address_masked"),
        language=doc["language"],
        provider=doc.get("provider"),
        attempts=len(attempts),
        last_error=errors[-1] if errors else None,
        template_version=doc.get("template_version"),
        due_at=doc.get("due_at"),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


class Messages:
    def __init__(self, db: Database) -> None:
        self.collection = db[MESSAGES]

    async def exists(self, dedupe: str, session: Session) -> bool:
        return (
            await self.collection.find_one({"dedupe": dedupe}, {"_id": 1}, session=session)
            is not None
        )

    async def push_outcomes(
        self, source_id: str, kind: str, session: Session
    ) -> dict[str, tuple[str, str | None]]:
        """Status and reason of each push channel's message of one kind for one source."""
        query = {"source_id": source_id, "kind": kind, "channel": {"$ne": "inbox"}}
        fields = {"channel": 1, "status": 1, "reason": 1}
        docs = await self.collection.find(query, fields, session=session).to_list()
        return {d["channel"]: (d["status"], d.get("reason")) for d in docs}

    async def get(self, message_id: str, session: Session | None = None) -> Document | None:
        return await self.collection.find_one({"_id": message_id}, session=session)

    async def update(
        self, message_id: str, session: Session, fields: dict[str, Any], **ops: Any
    ) -> None:
        update: dict[str, Any] = {"$set": {**fields, "updated_at": datetime.now(UTC)}}
        update.update(ops)
        await self.collection.update_one({"_id": message_id}, update, session=session)

    async def for_patient(
        self, patient_id: str, *, limit: int, before: str | None = None, org_id: str | None = None
    ) -> list[MessageView]:
        """Newest first; ``org_id``: only the messages sent for that organization."""
        query: dict[str, Any] = {"patient_id": patient_id}
        if org_id is not None:
            query["org_id"] = org_id
        if before:
            query["_id"] = {"$lt": before}
        docs = await self.collection.find(query).sort("_id", -1).limit(limit).to_list()
        return [to_view(d) for d in docs]

    async def by_provider_id(
        self, provider: str, provider_message_id: str, session: Session
    ) -> Document | None:
        return await self.collection.find_one(
            {"provider": provider, "provider_message_id": provider_message_id}, session=session
        )
