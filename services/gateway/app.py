"""The gateway app factory: the front door (tokens, limits, headers), routing, docs.

Every client and object is built in the lifespan by :mod:`services.gateway.bootstrap`.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
import swagger_ui_bundle
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from services.gateway import bootstrap
from services.gateway.audit_view import INTERNAL_HEADER, audit_view_router
from services.gateway.console_changes import router as console_changes_router
from services.gateway.console_site import console_router
from services.gateway.front_door import BodyLimitMiddleware, SecurityHeadersMiddleware
from services.gateway.guard import authenticate
from services.gateway.load_shedding import LoadSheddingMiddleware
from services.gateway.routes import auth, ops, staff
from services.gateway.routes.deps import get_audit
from services.gateway.routes.front import PROXY_METHODS, front_router, readiness_router
from services.gateway.settings import GatewaySettings
from services.gateway.throttle import rate_limit_anonymous
from shared.audit_routes import audit_router
from shared.health import ReadinessChecks, health_router
from shared.http import RequestContextMiddleware
from shared.logging import configure_logging
from shared.metrics import ServiceMetrics
from shared.mongo import ping
from shared.problems import install_problem_handlers

log = structlog.get_logger(__name__)
CORS_HEADERS = [
    "authorization",
    "content-type",
    "idempotency-key",
    "if-match",
    "last-event-id",
    *("x-access-reason", "x-access-reason*"),  # CORS: staff reasons (shared.access_reason)
]
CORS_EXPOSED = ["etag", "location", "retry-after", "x-request-id"]


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    configure_logging(settings.service_name, settings.log_level, json=settings.log_json)
    metrics = ServiceMetrics(settings.service_name)
    checks = ReadinessChecks({})

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gateway = bootstrap.build(settings, metrics, app)
        gateway.install(app)
        await gateway.start()
        checks.checks["redis"] = gateway.redis.ping
        checks.checks["mongo"] = lambda: ping(gateway.mongo)
        log.info("gateway.started", services=sorted(settings.service_urls))
        try:
            yield
        finally:
            await gateway.aclose()

    app = FastAPI(
        title="CareLoop gateway",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=PROXY_METHODS,
        allow_headers=CORS_HEADERS,
        expose_headers=CORS_EXPOSED,
        max_age=600,
    )
    app.add_middleware(SecurityHeadersMiddleware)
    # the request id of audit records and logs is the gateway's own, never the client's
    app.state.internal_request_key = secrets.token_urlsafe(24)
    app.add_middleware(
        RequestContextMiddleware,
        metrics=metrics,
        trust_request_id=False,
        trusted_caller=(INTERNAL_HEADER.encode(), app.state.internal_request_key.encode()),
    )
    # outermost: a surge beyond what this process can carry is refused before any work
    app.add_middleware(LoadSheddingMiddleware, max_in_flight=settings.max_in_flight_requests)
    install_problem_handlers(app)
    app.mount(
        "/docs/static", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-static"
    )

    app.include_router(readiness_router(settings, checks))
    app.include_router(health_router(settings.service_name, checks, metrics))  # after /readyz
    limited = [Depends(rate_limit_anonymous)]
    app.include_router(auth.router, dependencies=limited)
    app.include_router(staff.router, dependencies=limited)
    app.include_router(ops.router, dependencies=limited)
    app.include_router(
        audit_view_router(settings.service_urls, authenticate=authenticate, own="auth"),
        dependencies=limited,
    )
    app.include_router(audit_router("auth", audit_of=get_audit))  # reached by /v1/audit too

    app.include_router(console_router())  # the ops console's page (/console)
    app.include_router(console_changes_router, dependencies=limited)  # its live changes
    app.include_router(front_router(settings))  # last: /v1/{service}/... catches the rest

    return app
