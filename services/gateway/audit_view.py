"""``GET /v1/audit``: every service's audit log as one list, newest first (admins).

The gateway asks each service's ``GET /v1/<service>/admin/audit`` for a page with the same
filters, forwarding the caller's ``Authorization`` and ``X-Request-ID``; each service checks
the admin role itself and records the read (``audit.read``). Pages are merged by
``(at, id)`` descending and cut to ``limit``.

The combined cursor is opaque base64url JSON holding each service's own cursor (or that it
has nothing more) and the last record returned (see :class:`Position`).

Completeness over availability: an audit trail that silently misses a service would mislead
whoever investigates an access, so when a service cannot answer the whole request fails with
a 503 problem naming it in ``services`` (never a partial list). A 401/403 from the services is
passed on as it is (an unauthorized caller learns nothing about service health).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

import httpx
import structlog
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.audit import AuditPage, AuditRecord
from shared.audit_routes import (
    ActionQuery,
    ActorQuery,
    LimitQuery,
    PatientQuery,
    ReasonQuery,
    SinceQuery,
    UntilQuery,
    check_range,
)
from shared.auth import TokenVerifier, bearer_scheme
from shared.principal import Principal, Role
from shared.problems import (
    BadRequest,
    Forbidden,
    Problem,
    ServiceUnavailable,
    Unauthorized,
    problem_responses_doc,
)

__all__ = ["MergedAuditPage", "ServiceAuditRecord", "audit_view_router"]

log = structlog.get_logger(__name__)

OWN_BASE = "http://gateway.internal"  # the gateway's own log, served by the app in-process
_CURSOR_VERSION = 1
_MAX_CURSOR_CHARS = 4096

# the same filters as the services' own endpoint, but a combined (longer) cursor
CombinedCursorQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=_MAX_CURSOR_CHARS,
        description="Opaque: `next_cursor` of the last page.",
    ),
]


class ServiceAuditRecord(AuditRecord):
    """An audit record and the service whose log holds it."""

    service: str


class MergedAuditPage(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    items: list[ServiceAuditRecord]
    next_cursor: str | None = Field(
        default=None, description="Opaque: pass it as `cursor` to get the next page."
    )


@dataclass(frozen=True)
class _Failure:
    service: str
    status: int | None  # None: no answer at all
    body: dict[str, Any]
    headers: Mapping[str, str]


# --- the combined cursor -------------------------------------------------------------------

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


# --- the route ----------------------------------------------------------------------------

Authenticate = Callable[[Request], Awaitable[Principal | None]]


def _admin_check(authenticate: Authenticate | None) -> Callable[[Request], Awaitable[None]]:
    async def check(request: Request) -> None:
        """Refuse early what no service would accept; the services check the token again.

        No token: 401. With ``authenticate`` (the gateway's front-door check) or else a
        ``token_verifier`` on ``app.state``: 401 for a bad or ended token, 403 for a
        non-admin. With neither, the services decide.
        """
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized(
                "token_missing", "An access token is required.", detail_zh="请先登录。"
            )
        principal: Principal | None = None
        verifier = getattr(request.app.state, "token_verifier", None)
        if authenticate is not None:
            principal = await authenticate(request)
        elif isinstance(verifier, TokenVerifier):
            principal = await verifier.verify_async(token.strip())
        if principal is not None and not principal.has_any(Role.ADMIN):
            raise Forbidden(
                "forbidden_role",
                "This action requires one of the roles: admin.",
                detail_zh="您没有执行此操作的权限。",
            )

    return check


def _forward_headers(request: Request) -> dict[str, str]:
    request_id = getattr(request.state, "request_id", None) or request.headers.get("x-request-id")
    headers = {"authorization": request.headers["authorization"], "accept": "application/json"}
    if request_id:
        headers["x-request-id"] = str(request_id)
    return headers


async def _fetch(
    client: httpx.AsyncClient,
    service: str,
    base: str,
    params: dict[str, str],
    headers: dict[str, str],
) -> AuditPage | _Failure:
    try:
        response = await client.get(
            f"{base}/v1/{service}/admin/audit", params=params, headers=headers
        )
    except httpx.HTTPError as exc:
        log.warning("gateway.audit_source_down", service=service, error=type(exc).__name__)
        return _Failure(service, None, {}, {})
    if response.status_code != 200:
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        log.warning("gateway.audit_source_refused", service=service, status=response.status_code)
        return _Failure(service, response.status_code, body, response.headers)
    try:
        return AuditPage.model_validate_json(response.content)
    except ValidationError:
        log.warning("gateway.audit_source_invalid", service=service)
        return _Failure(service, 502, {}, {})


def _problem(failures: list[_Failure]) -> Problem:
    """The one problem to answer: the caller's own errors first, then unavailable services."""
    for wanted in ((401, 403), (400, 422)):
        for failure in failures:
            if failure.status in wanted:
                return _passed_on(failure)
    names = sorted(f.service for f in failures)
    return ServiceUnavailable(
        "audit_source_unavailable",
        f"the audit log cannot be read completely: {', '.join(names)} did not answer",
        retry_after=2,
        detail_zh="部分服务暂时不可用，审计记录无法完整读取，请稍后再试",
        extra={"services": names},
    )


def _passed_on(failure: _Failure) -> Problem:
    status = failure.status or 502
    code, detail = failure.body.get("code"), failure.body.get("detail")
    headers = {k: v for k, v in failure.headers.items() if k.lower() == "www-authenticate"}
    try:
        return Problem(
            status,
            code if isinstance(code, str) else "upstream_error",
            detail if isinstance(detail, str) else "the request was refused",
            headers=headers or None,
            extra={"service": failure.service},
        )
    except ValueError:  # not a snake_case code: keep the status only
        return Problem(status, "upstream_error", "the request was refused", headers=headers or None)


def _until_for(position: Position, service: str, until: datetime | None) -> datetime | None:
    """A service not reached yet is read from just after the anchor's millisecond down."""
    if position.anchor is None or isinstance(position.services.get(service), str):
        return until
    bound = position.anchor[0] + timedelta(milliseconds=1)
    return bound if until is None else min(until, bound)


def audit_view_router(
    service_urls: dict[str, str],
    *,
    authenticate: Authenticate | None = None,
    own: str | None = None,
) -> APIRouter:
    """``GET /v1/audit`` over ``service_urls``; ``authenticate`` is the gateway's token check.

    ``own`` names the gateway's own log (staff account changes), read in-process through
    ``app.state.own_http``, a client bound to the gateway app itself.
    """
    urls = dict(service_urls)
    if own:
        urls[own] = OWN_BASE
    router = APIRouter(tags=["audit"])

    @router.get(
        "/v1/audit",
        summary="Every service's audit records, merged newest first (admin)",
        description=(
            "The filters of `/v1/<service>/admin/audit`, applied on every service. "
            "`next_cursor` combines the services' positions. If a service cannot answer, "
            "503 `audit_source_unavailable` names it in `services`: never a partial list."
        ),
        response_model=MergedAuditPage,
        dependencies=[Depends(bearer_scheme), Depends(_admin_check(authenticate))],
        responses=problem_responses_doc(400, 401, 403, 422, 503),
    )
    async def merged_audit(
        request: Request,
        patient_id: PatientQuery = None,
        actor_id: ActorQuery = None,
        action: ActionQuery = None,
        since: SinceQuery = None,
        until: UntilQuery = None,
        limit: LimitQuery = 100,
        cursor: CombinedCursorQuery = None,
        reason: ReasonQuery = None,
    ) -> MergedAuditPage:
        check_range(since, until)
        position = decode_cursor(cursor, urls) if cursor else Position()
        wanted = [s for s in urls if s not in position.services or position.services[s]]
        common = {
            "patient_id": patient_id,
            "actor_id": actor_id,
            "action": action,
            "since": since.isoformat() if since else None,
            "reason": reason,
            "limit": str(limit),
        }
        client: httpx.AsyncClient = request.app.state.http
        headers = _forward_headers(request)

        async def one(service: str) -> AuditPage | _Failure:
            bound = _until_for(position, service, until)
            params = {
                **common,
                "until": bound.isoformat() if bound else None,
                "cursor": position.services.get(service),
            }
            kept = {k: v for k, v in params.items() if v is not None}
            base = urls[service]
            source = request.app.state.own_http if base == OWN_BASE else client
            return await _fetch(source, service, base, kept, headers)

        results = await asyncio.gather(*(one(s) for s in wanted))
        failures = [r for r in results if isinstance(r, _Failure)]
        if failures:
            raise _problem(failures)
        fetched = {
            s: split_page(s, r, position.anchor)
            for s, r in zip(wanted, results, strict=True)
            if isinstance(r, AuditPage)
        }
        taken, after = merge(position, fetched, limit, list(urls))
        log.info("gateway.audit_read", services=wanted, returned=len(taken), more=after is not None)
        return MergedAuditPage(
            items=taken, next_cursor=None if after is None else encode_cursor(after)
        )

    return router
