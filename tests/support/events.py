"""A test-only event type, registered like any service's payloads."""

from __future__ import annotations

from shared.events import EventPayload, event_type


@event_type("test.thing_happened")
class ThingHappened(EventPayload):
    n: int
    note: str = ""
