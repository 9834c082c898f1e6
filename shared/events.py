"""The event envelope of docs/architecture.md §5 (CloudEvents 1.0 attribute names) and the
payload registry.

Producers own their payload models: each service declares them with :func:`event_type`,
which registers the model under its CloudEvents ``type`` and schema version. The JSON
Schemas in ``schemas/events/`` are generated from this registry.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, Field

from shared.ids import new_id


class EventPayload(BaseModel):
    """Base of every event payload. Consumers read tolerantly: unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str] = ""
    version: ClassVar[int] = 1


class Envelope(BaseModel):
    """One event as it travels on Kafka."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    specversion: str = "1.0"
    id: str = Field(default_factory=new_id)
    type: str
    source: str
    subject: str
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    dataschema: str
    correlationid: str | None = None
    causationid: str | None = None
    data: dict[str, Any]

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        return cls.model_validate(json.loads(raw))

    def payload(self, model: builtins.type[P]) -> P:
        return model.model_validate(self.data)


P = TypeVar("P", bound=EventPayload)

REGISTRY: dict[str, type[EventPayload]] = {}


def event_type(name: str, version: int = 1) -> Callable[[type[P]], type[P]]:
    """Class decorator registering a payload model as ``careloop.<name>`` version ``version``."""

    def register(model: type[P]) -> type[P]:
        full = f"careloop.{name}"
        key = f"{full}/{version}"
        if key in REGISTRY and REGISTRY[key] is not model:
            raise ValueError(f"event type {key} registered twice")
        model.event_type = full
        model.version = version
        REGISTRY[key] = model
        return model

    return register


def make_event(
    payload: EventPayload,
    *,
    source: str,
    subject: str,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> Envelope:
    """Wrap a registered payload into an envelope (the Kafka key is ``subject``).

    Without explicit ids, the correlation id is the request id bound in the log context
    (by the HTTP middleware or, in a consumer, from the record's headers) and the
    causation id is the event being handled, else that request.
    """
    bound = structlog.contextvars.get_contextvars()
    correlation_id = correlation_id or bound.get("request_id")
    causation_id = causation_id or bound.get("event_id") or bound.get("request_id")
    if not payload.event_type:
        raise ValueError(f"{type(payload).__name__} is not registered with @event_type")
    return Envelope(
        type=payload.event_type,
        source=source,
        subject=subject,
        dataschema=f"{payload.event_type}/{payload.version}",
        correlationid=correlation_id,
        causationid=causation_id,
        data=payload.model_dump(mode="json"),
    )


def json_schemas() -> dict[str, dict[str, Any]]:
    """Every registered payload's JSON Schema, keyed by ``<type>/<version>``."""
    return {key: model.model_json_schema() for key, model in sorted(REGISTRY.items())}
