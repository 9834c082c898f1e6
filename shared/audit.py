"""Staff access audit (docs/architecture.md §8): who read or changed which patient's data, when
and why.

Only staff and service principals are audited. A plain patient account (no staff role, no
``service`` role) acting through the patient API is not: ``AuditLog.record`` returns ``None``
for it, since ownership checks already confine it to its own and its family's records.

Records are kept at least 180 days, so the collection has no TTL index: retention beyond
that is an operator's archival job, never an automatic expiry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, cast
from uuid import uuid4

import structlog
from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator
from pymongo import DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from shared.access_reason import reason_of
from shared.principal import Principal, Role
from shared.privacy import redact_data, redact_text
from shared.problems import BadRequest

__all__ = [
    "AUDIT_COLLECTION",
    "DENIED",
    "MAX_QUERY_LIMIT",
    "AuditLog",
    "AuditPage",
    "AuditRecord",
    "Outcome",
    "UnknownAuditCursor",
    "is_audited",
    "record_denial",
]

AUDIT_COLLECTION = "audit_log"
MAX_QUERY_LIMIT = 1000
Outcome = Literal["allowed", "denied"]
_ANY = TypeAdapter(Any)


def _now_ms() -> datetime:
    """Now in UTC, cut to milliseconds as BSON stores it (so cursors round-trip)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return None if value is None else str(value)


class AuditRecord(BaseModel):
    """One audited access. ``reason`` and ``details`` are redacted: no full ID or phone."""

    # in responses every field is present, so the OpenAPI output schema marks them required
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    id: str = Field(default_factory=lambda: str(uuid4()))
    at: datetime = Field(default_factory=_now_ms)
    actor_id: str
    actor_role: str
    action: str  # e.g. "patient.read", "appointment.cancel"
    patient_id: str | None
    resource: str  # e.g. "appointment:123"
    reason: str | None = None
    request_id: str | None = Field(default_factory=_current_request_id)
    org_id: str | None = None
    outcome: Outcome = "allowed"
    details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("at")
    @classmethod
    def _utc_ms(cls, value: datetime) -> datetime:
        # PyMongo returns naive UTC datetimes unless the client is tz_aware.
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(microsecond=value.microsecond // 1000 * 1000)

    @field_validator("reason")
    @classmethod
    def _redact_reason(cls, value: str | None) -> str | None:
        return None if value is None else redact_text(value)

    @field_validator("details")
    @classmethod
    def _redact_details(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Models and dataclasses become plain dicts first, so their fields are redacted too.
        return cast(dict[str, Any], redact_data(_ANY.dump_python(value)))


class AuditPage(BaseModel):
    """One page of records, newest first; ``next_cursor`` is ``None`` on the last page."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    items: list[AuditRecord]
    next_cursor: str | None = Field(
        default=None, description="Opaque: pass it as `cursor` to get the next page."
    )


class UnknownAuditCursor(ValueError):
    """The cursor names no audit record (tampered with, or from another service)."""


def is_audited(principal: Principal) -> bool:
    """Staff and service principals are audited; plain patient accounts are not."""
    return principal.is_staff or Role.SERVICE in principal.roles


def require_reason(principal: Principal, reason: str | None, what: str) -> None:
    """Staff say why they read or act on ``what`` (the reason goes into the audit record):
    400 ``reason_required`` if not. Routes take ``reason`` as
    :data:`shared.access_reason.AccessReason` (query ``reason`` or ``X-Access-Reason``)."""
    if principal.is_staff and not reason:
        raise BadRequest(
            "reason_required",
            f"staff must give a reason for {what}: the query parameter `reason` "
            "or the X-Access-Reason header",
            detail_zh="请填写查阅原因",
        )


DENIED = "access.denied"


async def record_denial(audit: AuditLog, request: Request, principal: Any, problem: Any) -> None:
    """A refused call of a staff or service caller (403): who tried which route on which
    patient, and why it was refused (``problem.code``). Patients' refusals are not audited."""
    if not isinstance(principal, Principal) or not is_audited(principal):
        return
    route = request.scope.get("route")
    template = str(getattr(route, "path", request.url.path))
    params = {k: str(v)[:64] for k, v in request.path_params.items()}
    reason = reason_of(request)
    await audit.record(
        principal,
        DENIED,
        patient_id=params.get("patient_id"),
        resource=f"{request.method} {template}",
        reason=reason,
        outcome="denied",
        details={"code": str(getattr(problem, "code", "")), "params": params},
    )


class AuditLog:
    """The ``audit_log`` collection of one service's database."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self._collection: AsyncCollection[Any] = db[AUDIT_COLLECTION]

    async def ensure_indexes(self) -> None:
        # No TTL index: records are kept at least 180 days (see module docstring).
        await self._collection.create_indexes(
            [
                IndexModel(
                    [("patient_id", 1), ("at", DESCENDING), ("_id", DESCENDING)],
                    name="patient_at",
                ),
                IndexModel(
                    [("actor_id", 1), ("at", DESCENDING), ("_id", DESCENDING)],
                    name="actor_at",
                ),
                IndexModel(
                    [("action", 1), ("at", DESCENDING), ("_id", DESCENDING)],
                    name="action_at",
                ),
                IndexModel([("at", DESCENDING), ("_id", DESCENDING)], name="at"),
                IndexModel([("org_id", 1), ("at", DESCENDING), ("_id", DESCENDING)], name="org_at"),
            ]
        )

    async def record(
        self,
        principal: Principal,
        action: str,
        *,
        patient_id: str | None,
        resource: str,
        reason: str | None = None,
        outcome: Outcome = "allowed",
        details: dict[str, Any] | None = None,
        session: AsyncClientSession | None = None,
        org_id: str | None = None,
    ) -> AuditRecord | None:
        """Write one record, inside the caller's transaction when ``session`` is given.

        ``org_id``: the organization whose record was reached (its admin reads this entry in
        its audit log); the caller's own organization when not given. Returns ``None``
        without writing for principals that are not audited (plain patients).
        """
        if not is_audited(principal):
            return None
        entry = AuditRecord(
            actor_id=principal.subject,
            actor_role=principal.primary_role,
            action=action,
            patient_id=patient_id,
            resource=resource,
            reason=reason,
            org_id=org_id or principal.org_id,
            outcome=outcome,
            details=details or {},
        )
        await self._collection.insert_one(_to_document(entry), session=session)
        return entry

    async def query(
        self,
        *,
        patient_id: str | None = None,
        actor_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        after_id: str | None = None,
        action: str | None = None,
    ) -> list[AuditRecord]:
        """Records newest first; pass the last ``id`` of a page as ``after_id`` for the next.

        ``since`` is inclusive, ``until`` exclusive. Raises ``ValueError`` for a limit outside
        1..1000 or an ``after_id`` that does not exist (:class:`UnknownAuditCursor`).
        """
        _check_limit(limit)
        query = await self._filter(patient_id, actor_id, action, since, until, after_id)
        return await self._find(query, limit)

    async def page(
        self,
        *,
        patient_id: str | None = None,
        actor_id: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
        org_id: str | None = None,
    ) -> AuditPage:
        """Like :meth:`query`, with a ``next_cursor`` only when more records follow;
        ``org_id`` confines the page to one organization's records."""
        _check_limit(limit)
        query = await self._filter(patient_id, actor_id, action, since, until, cursor)
        if org_id is not None:
            query["org_id"] = org_id
        found = await self._find(query, limit + 1)
        more = len(found) > limit
        items = found[:limit]
        return AuditPage(items=items, next_cursor=items[-1].id if more else None)

    async def _filter(
        self,
        patient_id: str | None,
        actor_id: str | None,
        action: str | None,
        since: datetime | None,
        until: datetime | None,
        after_id: str | None,
    ) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if patient_id is not None:
            query["patient_id"] = patient_id
        if actor_id is not None:
            query["actor_id"] = actor_id
        if action is not None:
            query["action"] = action
        at_range: dict[str, datetime] = {}
        if since is not None:
            at_range["$gte"] = since
        if until is not None:
            at_range["$lt"] = until
        if at_range:
            query["at"] = at_range
        if after_id is not None:
            anchor = await self._collection.find_one({"_id": after_id}, {"at": 1})
            if anchor is None:
                raise UnknownAuditCursor("unknown audit cursor")
            query["$or"] = [
                {"at": {"$lt": anchor["at"]}},
                {"at": anchor["at"], "_id": {"$lt": after_id}},
            ]
        return query

    async def _find(self, query: dict[str, Any], limit: int) -> list[AuditRecord]:
        cursor = (
            self._collection.find(query)
            .sort([("at", DESCENDING), ("_id", DESCENDING)])
            .limit(limit)
        )
        return [_from_document(doc) async for doc in cursor]


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_QUERY_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_QUERY_LIMIT}")


def _to_document(entry: AuditRecord) -> dict[str, Any]:
    document = entry.model_dump()
    document["_id"] = document.pop("id")
    return document


def _from_document(document: dict[str, Any]) -> AuditRecord:
    fields = dict(document)
    fields["id"] = fields.pop("_id")
    return AuditRecord.model_validate(fields)
