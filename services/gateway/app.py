"""The gateway app factory: logins, the front door (tokens, limits, headers), routing, docs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
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

from services.gateway.audit_view import OWN_BASE, audit_view_router
from services.gateway.docs import fetch_openapi, merge_openapi
from services.gateway.front_door import BodyLimitMiddleware, SecurityHeadersMiddleware
from services.gateway.guard import authenticate
from services.gateway.identity.accounts import INDEXES, PatientAccounts, StaffAccounts
from services.gateway.identity.codes import LoginCodes
from services.gateway.identity.logins import CodeSender, Logins
from services.gateway.identity.passwords import hash_password
from services.gateway.identity.sessions import Sessions
from services.gateway.identity.wechat import WechatLogin
from services.gateway.proxy import UpstreamProxy
from services.gateway.ratelimit import create_limiter_redis
from services.gateway.routes import auth, ops, staff
from services.gateway.routes.deps import get_audit
from services.gateway.settings import GatewaySettings
from services.gateway.throttle import rate_limit, rate_limit_anonymous
from services.gateway.traffic import TrafficPolicy
from shared.audit import AuditLog
from shared.audit_routes import audit_router
from shared.auth import TokenMinter, from_settings
from shared.crypto import FieldCipher
from shared.health import ReadinessChecks, health_router
from shared.http import RequestContextMiddleware
from shared.logging import configure_logging
from shared.metrics import ServiceMetrics
from shared.mongo import create_client, ensure_indexes, ping
from shared.principal import Role
from shared.problems import install_problem_handlers
from shared.redis_client import create_redis

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


def private_key_pem(settings: GatewaySettings) -> str:
    pem = settings.jwt_private_key.strip()
    if not pem and settings.jwt_private_key_file:
        pem = Path(settings.jwt_private_key_file).read_text(encoding="utf-8")
    if not pem:
        raise ValueError(
            "no JWT signing key: set CARELOOP_GATEWAY_JWT_PRIVATE_KEY (PEM) or "
            "CARELOOP_GATEWAY_JWT_PRIVATE_KEY_FILE"
        )
    return pem.replace("\\n", "\n") if "\\n" in pem and "\n" not in pem else pem


def build_logins(
    settings: GatewaySettings, client: httpx.AsyncClient, redis: Any, db: Any
) -> Logins:
    cipher = FieldCipher.from_settings(settings.pii_encryption_keys, settings.pii_hash_key)
    minter = TokenMinter(
        private_key_pem(settings),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        key_id=settings.jwt_key_id or None,
    )
    prefix = settings.redis_key_prefix
    notifications = settings.service_urls.get("notifications", "")
    return Logins(
        codes=LoginCodes(
            redis,
            settings.pii_hash_key.encode(),
            prefix=prefix,
            length=settings.otp_length,
            ttl_seconds=settings.otp_ttl_seconds,
            max_attempts=settings.otp_max_attempts,
            resend_seconds=settings.otp_resend_seconds,
            daily_limit=settings.otp_daily_limit,
        ),
        sender=CodeSender(client, notifications, minter),
        patients=PatientAccounts(db, cipher),
        staff=StaffAccounts(db),
        sessions=Sessions(
            redis,
            minter,
            prefix=prefix,
            access_ttl=settings.access_token_ttl_seconds,
            patient_refresh_ttl=settings.patient_refresh_ttl_days * 86_400,
            staff_refresh_ttl=settings.staff_refresh_ttl_hours * 3600,
        ),
        wechat=WechatLogin(
            client, settings.wechat_appid, settings.wechat_secret, settings.wechat_api_base
        ),
        notifications_url=notifications,
        max_failed_logins=settings.staff_max_failed_logins,
        lockout=timedelta(minutes=settings.staff_lockout_minutes),
        lookup_timeout=settings.account_lookup_timeout_seconds,
    )


async def bootstrap_admin(settings: GatewaySettings, logins: Logins) -> None:
    """The first admin, from settings, when no staff account exists yet."""
    name, password = settings.bootstrap_admin_username, settings.bootstrap_admin_password
    if not (name and password) or await logins.staff.count() > 0:
        return
    await logins.staff.create(
        username=name,
        password_hash=await hash_password(password),
        roles=[Role.ADMIN],
        org_id=None,
        display_name="Administrator",
        created_by="bootstrap",
    )
    log.info("staff.bootstrap_admin_created", username=name)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    configure_logging(settings.service_name, settings.log_level, json=settings.log_json)
    metrics = ServiceMetrics(settings.service_name)
    checks = ReadinessChecks({})

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(
                settings.upstream_timeout_seconds, connect=settings.upstream_connect_timeout_seconds
            ),
            limits=httpx.Limits(max_connections=500, max_keepalive_connections=100),
        )
        redis = create_redis(settings.redis_url)
        limiter_redis = create_limiter_redis(settings.redis_url)
        mongo = create_client(settings.mongo_url, app_name=settings.service_name)
        db = mongo[settings.database_name]
        app.state.settings = settings
        app.state.http = client
        app.state.own_http = own_http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=OWN_BASE
        )
        app.state.redis = redis
        app.state.proxy = UpstreamProxy(
            client,
            settings.service_urls,
            settings.idempotent_retries,
            timeout=settings.upstream_timeout_seconds,
            connect_timeout=settings.upstream_connect_timeout_seconds,
            stream_idle_timeout=settings.stream_idle_timeout_seconds,
            max_response_bytes=settings.max_upstream_response_bytes,
        )
        app.state.audit = AuditLog(db)
        app.state.traffic = TrafficPolicy(
            limiter_redis,
            settings.rate_limits,
            prefix=settings.redis_key_prefix,
            hash_key=settings.pii_hash_key.encode(),
            registry=metrics.registry,
        )
        app.state.logins = logins = build_logins(settings, client, redis, db)
        app.state.token_verifier = from_settings(settings, is_revoked=logins.sessions.is_revoked)
        await ensure_indexes(db, INDEXES)
        await app.state.audit.ensure_indexes()
        await bootstrap_admin(settings, logins)
        checks.checks["redis"] = redis.ping
        checks.checks["mongo"] = lambda: ping(mongo)
        log.info("gateway.started", services=sorted(settings.service_urls))
        try:
            yield
        finally:
            await client.aclose()
            await own_http.aclose()
            await redis.aclose()
            await limiter_redis.aclose()
            await mongo.close()

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
