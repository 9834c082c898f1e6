"""``GET /v1/audit``: every service's audit log as one list, newest first (admins).

The gateway asks each service's ``GET /v1/<service>/admin/audit`` for a page with the same
filters, forwarding the caller's ``Authorization`` and ``X-Request-ID``; each service checks
the admin role itself and records the read (``audit.read``). Pages are merged by
``(at, id)`` descending and cut to ``limit``.

The combined cursor and the merge are in :mod:`services.gateway.audit_cursor`.

Completeness over availability: an audit trail that silently misses a service would mislead
whoever investigates an access, so when a service cannot answer the whole request fails with
a 503 problem naming it in ``services`` (never a partial list). A 401/403 from the services is
passed on as it is (an unauthorized caller learns nothing about service health).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import httpx
import structlog
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.gateway.audit_cursor import (
    Position,
    ServiceAuditRecord,
    decode_cursor,
    encode_cursor,
    merge,
    split_page,
)
from shared.audit import AuditPage
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
    Forbidden,
    Problem,
    ServiceUnavailable,
    Unauthorized,
    problem_responses_doc,
)

__all__ = ["MergedAuditPage", "ServiceAuditRecord", "audit_view_router"]

log = structlog.get_logger(__name__)

OWN_BASE = "http://gateway.internal"  # the gateway's own log, served by the app in-process
# carries app.state.internal_request_key (random per process) on those in-process calls, so
# they keep the outer request's id (shared.http.RequestContextMiddleware trusted_caller)
INTERNAL_HEADER = "x-careloop-internal"
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
    request_id = getattr(request.state, "request_id", None)  # the gateway's, never the client's
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
            if base == OWN_BASE:  # in-process: the inner request keeps our request id
                own = {**headers, INTERNAL_HEADER: request.app.state.internal_request_key}
                return await _fetch(request.app.state.own_http, service, base, kept, own)
            return await _fetch(client, service, base, kept, headers)

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
