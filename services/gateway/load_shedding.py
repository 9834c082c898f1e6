"""Load shedding at the front door: past ``max_in_flight`` requests, a fast 429 at once.

In a release-time surge thousands of connections arrive in the same second. Without a
bound each request would first be verified, counted in Redis and queued for a service,
and the event loop would answer nobody for seconds (the first answers of a 10,000-patient
surge came after 33 s). This pure ASGI middleware, the outermost of the gateway, counts
the requests in progress and answers the ones beyond the bound with ``429 overloaded``
and ``Retry-After: 1`` before any other work: no token check, no Redis, no body read.
Health, readiness and metrics are never shed; event streams (long-lived) are not counted.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway.refusals import overloaded
from shared.problems import problem_response

NEVER_SHED = ("/healthz", "/readyz", "/metrics")


class LoadSheddingMiddleware:
    def __init__(self, app: ASGIApp, max_in_flight: int) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.shed = 0  # refused so far (for the log and tests)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(NEVER_SHED):
            await self.app(scope, receive, send)
            return
        if any(
            name == b"accept" and b"text/event-stream" in value.lower()
            for name, value in scope.get("headers", [])
        ):
            await self.app(scope, receive, send)  # a stream: held long, not counted
            return
        if self.in_flight >= self.max_in_flight:
            self.shed += 1
            response = problem_response(overloaded(1), Request(scope, receive))
            await response(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
