"""Routes: the gateway's own front — readiness of it and its services, the merged API
documents, and the catch-all that forwards ``/v1/<service>/...`` upstream."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.responses import Response

from services.gateway.docs import fetch_openapi, merge_openapi
from services.gateway.guard import bearer_principal
from services.gateway.proxy import UpstreamProxy
from services.gateway.settings import GatewaySettings
from services.gateway.throttle import admit
from shared.health import ReadinessChecks

PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


async def service_readiness(client: httpx.AsyncClient, urls: dict[str, str]) -> dict[str, str]:
    async def one(name: str, base: str) -> tuple[str, str]:
        try:
            response = await client.get(f"{base}/readyz", timeout=2.0)
            return name, "ok" if response.status_code == 200 else "not_ready"
        except httpx.HTTPError as exc:
            return name, f"unreachable: {type(exc).__name__}"

    return dict(await asyncio.gather(*(one(n, u) for n, u in urls.items())))


def readiness_router(settings: GatewaySettings, checks: ReadinessChecks) -> APIRouter:
    """``/readyz``: the gateway's own checks and every service's (include before health)."""
    router = APIRouter()

    @router.get("/readyz", include_in_schema=False)
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

    return router


def front_router(settings: GatewaySettings) -> APIRouter:
    """The merged documents and the forwarding catch-all (include last)."""
    router = APIRouter()

    @router.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> dict[str, Any]:
        documents = await fetch_openapi(request.app.state.http, settings.service_urls)
        documents["gateway"] = request.app.openapi()
        return merge_openapi(documents, title="CareLoop API")

    @router.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="CareLoop API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
        )

    @router.api_route("/v1/{service}/{path:path}", methods=PROXY_METHODS, include_in_schema=False)
    async def route(request: Request, service: str, path: str) -> Response:
        principal = bearer_principal(request)  # the signature, in-process
        await admit(request, principal)  # logout, ended logins, limits: one Redis call
        proxy: UpstreamProxy = request.app.state.proxy
        return await proxy.forward(request, service)

    return router
