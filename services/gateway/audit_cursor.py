"""The combined cursor and merge of ``GET /v1/audit`` (:mod:`services.gateway.audit_view`).

The combined cursor is opaque base64url JSON holding each service's own cursor (or that it
has nothing more) and the last record returned (see :class:`Position`). Pages are merged by
``(at, id)`` descending and cut to ``limit``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from shared.audit import AuditPage, AuditRecord
from shared.problems import BadRequest

__all__ = [
    "Fetched",
    "Key",
    "Position",
    "ServiceAuditRecord",
    "decode_cursor",
    "encode_cursor",
    "key_of",
    "merge",
    "split_page",
]

_CURSOR_VERSION = 1


class ServiceAuditRecord(AuditRecord):
    """An audit record and the service whose log holds it."""

    service: str


Key = tuple[datetime, str]


def key_of(record: AuditRecord) -> Key:
    return (record.at, record.id)


@dataclass(frozen=True)
class Position:
    """Where a listing stands: per service, and the last record returned overall.

    ``services[s]`` is the id of the last record of ``s`` already returned (the service's own
    cursor), ``None`` once ``s`` has nothing more, and absent while nothing of ``s`` has been
    returned. Such a service is asked for records older than ``anchor`` (the last record
    returned), so records written since the first page (each read writes ``audit.read``)
    never show up in the middle of a listing.
    """

    services: dict[str, str | None] = field(default_factory=dict)
    anchor: Key | None = None


def encode_cursor(position: Position) -> str:
    anchor = (
        None if position.anchor is None else [position.anchor[0].isoformat(), position.anchor[1]]
    )
    data = {"v": _CURSOR_VERSION, "c": position.services, "a": anchor}
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _bad_cursor() -> BadRequest:
    return BadRequest("audit_cursor_invalid", "the cursor is not one this gateway gave out")


def _is_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 64


def decode_cursor(cursor: str, services: Mapping[str, str]) -> Position:
    """The position ``cursor`` holds; 400 ``audit_cursor_invalid`` if it is not ours."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(data, dict) or data.get("v") != _CURSOR_VERSION:
            raise ValueError("not a cursor")
        states, anchor = data.get("c"), data.get("a")
        if not isinstance(states, dict) or not set(states) <= set(services):
            raise ValueError("unknown services")
        if not all(v is None or _is_id(v) for v in states.values()):
            raise ValueError("bad service cursor")
        if anchor is None:
            return Position(dict(states))
        if not (isinstance(anchor, list) and len(anchor) == 2 and _is_id(anchor[1])):
            raise ValueError("bad anchor")
        at = datetime.fromisoformat(anchor[0])
        if at.tzinfo is None:
            raise ValueError("naive anchor")
        return Position(dict(states), (at, anchor[1]))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise _bad_cursor() from exc


@dataclass(frozen=True)
class Fetched:
    """One service's answer: records older than the anchor, those newer, and if more follow."""

    records: list[ServiceAuditRecord]
    skipped: list[ServiceAuditRecord]
    more: bool


def split_page(service: str, page: AuditPage, anchor: Key | None) -> Fetched:
    records = [ServiceAuditRecord(**r.model_dump(), service=service) for r in page.items]
    if anchor is None:
        return Fetched(records, [], page.next_cursor is not None)
    kept = [r for r in records if key_of(r) < anchor]
    skipped = [r for r in records if key_of(r) >= anchor]
    return Fetched(kept, skipped, page.next_cursor is not None)


def merge(
    position: Position, fetched: Mapping[str, Fetched], limit: int, services: list[str]
) -> tuple[list[ServiceAuditRecord], Position | None]:
    """The next ``limit`` records across services, newest first, and the position after them.

    A record older than the last one fetched from a service that has more is left for the
    next page: that service may hold records between the two.
    """
    merged = sorted((r for f in fetched.values() for r in f.records), key=key_of, reverse=True)
    floors = [
        key_of(f.records[-1]) if f.records else position.anchor for f in fetched.values() if f.more
    ]
    known = [floor for floor in floors if floor is not None]
    if known:
        floor = max(known)
        merged = [r for r in merged if key_of(r) >= floor]
    taken = merged[:limit]
    states = dict(position.services)
    for service, f in fetched.items():
        mine = [r for r in taken if r.service == service]
        if mine:
            states[service] = None if len(mine) == len(f.records) and not f.more else mine[-1].id
        elif not f.records and not f.more:
            states[service] = None
        elif f.skipped:
            states[service] = f.skipped[-1].id
    anchor = key_of(taken[-1]) if taken else position.anchor
    done = all(s in states and states[s] is None for s in services)
    return taken, None if done else Position(states, anchor)
