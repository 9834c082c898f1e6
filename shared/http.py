"""Per-request context: request id (accepted or created), log binding, metrics, access log.

A service behind the gateway takes the gateway's ``X-Request-Id`` (the gateway overwrites
the client's). The gateway itself (``trust_request_id=False``) always makes its own: a
client's id would otherwise name audit records and logs. It keeps a well-formed client
value as ``client_request_id`` (request state and log key) for correlation only.
"""

from __future__ import annotations

import hmac
import re
import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.ids import new_id
from shared.metrics import ServiceMetrics

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_UNLOGGED = {"/healthz", "/readyz", "/metrics"}

log = structlog.get_logger("http")


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/v1/x/{id}``) to keep metric labels bounded.

    The router records the route it matched in the scope; nothing matched means 404.
    """
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))


class RequestContextMiddleware:
    """Pure ASGI middleware (cheap on the hot path, safe for streaming responses)."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: ServiceMetrics,
        *,
        trust_request_id: bool = True,
        trusted_caller: tuple[bytes, bytes] | None = None,
    ) -> None:
        """``trusted_caller``: a header (name, secret value) whose bearer keeps its request
        id even when ``trust_request_id`` is off (the gateway's in-process calls to itself)."""
        self.app = app
        self.metrics = metrics
        self.trust_request_id = trust_request_id
        self.trusted_caller = trusted_caller

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming, trusted = "", self.trust_request_id
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
            elif self.trusted_caller and name == self.trusted_caller[0]:
                trusted = trusted or hmac.compare_digest(value, self.trusted_caller[1])
        valid = bool(_VALID_REQUEST_ID.match(incoming))
        request_id = incoming if valid and trusted else new_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        if not trusted and valid:
            state["client_request_id"] = incoming
            structlog.contextvars.bind_contextvars(client_request_id=incoming)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            path = scope.get("path", "")
            route = route_template(scope)
            method = scope.get("method", "")
            self.metrics.http_requests.labels(method, route, str(status)).inc()
            self.metrics.http_latency.labels(method, route).observe(elapsed)
            if path not in _UNLOGGED:
                query = scope.get("query_string", b"").decode("latin-1")
                log.info(
                    "http.request",
                    method=method,
                    path=path,
                    query=query or None,
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )
            structlog.contextvars.clear_contextvars()
