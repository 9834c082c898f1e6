"""The gateway app factory: the front door (tokens, limits, headers), routing, docs.

Every client and object is built in the lifespan by :mod:`services.gateway.bootstrap`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import structlog
import swagger_ui_bundle
from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from services.gateway import bootstrap
from services.gateway.audit_view import audit_view_router
from services.gateway.docs import fetch_openapi, merge_openapi
from services.gateway.front_door import BodyLimitMiddleware, SecurityHeadersMiddleware
from services.gateway.guard import authenticate
from services.gateway.proxy import UpstreamProxy
from services.gateway.routes import auth, ops, staff
from services.gateway.routes.deps import get_audit
from services.gateway.settings import GatewaySettings
from services.gateway.throttle import rate_limit, rate_limit_anonymous
from shared.audit_routes import audit_router
from shared.health import ReadinessChecks, health_router
from shared.http import RequestContextMiddleware
from shared.logging import configure_logging
from shared.metrics import ServiceMetrics
from shared.mongo import ping
from shared.problems import install_problem_handlers

log = structlog.get_logger(__name__)
PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
CORS_HEADERS = [
    "authorization",
    "content-type",
    "idempotency-key",
    "if-match",
    "last-event-id",
    *("x-access-reason", "x-access-reason*"),  # CORS: staff reasons (shared.access_reason)
]
CORS_EXPOSED = ["etag", "location", "retry-after", "x-request-id"]


async def service_readiness(client: httpx.AsyncClient, urls: dict[str, str]) -> dict[str, str]:
    async def one(name: str, base: str) -> tuple[str, str]:
        try:
            response = await client.get(f"{base}/readyz", timeout=2.0)
            return name, "ok" if response.status_code == 200 else "not_ready"
        except httpx.HTTPError as exc:
            return name, f"unreachable: {type(exc).__name__}"

    return dict(await asyncio.gather(*(one(n, u) for n, u in urls.items())))


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
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    install_problem_handlers(app)
    app.mount(
        "/docs/static", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-static"
    )

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        own = await checks.run()
        services = await service_readiness(request.app.state.http, settings.service_urls)
        ready = all(v == "ok" for v in (*own.values(), *services.values()))
        return JSONResponse(
            {
                "status": "ready" if ready else "not_ready",
                "service": "gateway",
                "checks": own,
                "services": services,
            },
            status_code=200 if ready else 503,
        )

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

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> dict[str, Any]:
        documents = await fetch_openapi(request.app.state.http, settings.service_urls)
        documents["gateway"] = app.openapi()
        return merge_openapi(documents, title="CareLoop API")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="CareLoop API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
        )

    @app.api_route("/v1/{service}/{path:path}", methods=PROXY_METHODS, include_in_schema=False)
    async def route(request: Request, service: str, path: str) -> Response:
        principal = await authenticate(request)
        await rate_limit(request, principal)
        proxy: UpstreamProxy = request.app.state.proxy
        return await proxy.forward(request, service)

    return app
