"""The gateway's composition root: every client and object, built with explicit arguments.

``build`` runs in the app's lifespan (never at import time); ``Gateway.install`` puts the
objects where the routes and dependencies read them (``app.state``), ``start`` prepares the
database and ``aclose`` closes every client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

import httpx
import structlog
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from services.gateway.audit_view import OWN_BASE
from services.gateway.console_changes import ConsoleChanges
from services.gateway.identity.accounts import PatientAccounts, StaffAccounts
from services.gateway.identity.codes import LoginCodes
from services.gateway.identity.lockout import LoginAttempts
from services.gateway.identity.logins import CodeSender, Logins
from services.gateway.identity.passwords import hash_password
from services.gateway.identity.sessions import Sessions
from services.gateway.identity.wechat import WechatLogin
from services.gateway.proxy import UpstreamProxy
from services.gateway.settings import GatewaySettings
from services.gateway.store import INDEXES
from services.gateway.traffic import TrafficPolicy
from shared.audit import AuditLog, record_denial
from shared.auth import TokenMinter, TokenVerifier, from_settings, read_pem
from shared.crypto import FieldCipher
from shared.metrics import ServiceMetrics
from shared.mongo import Database, Document, create_client, ensure_indexes
from shared.principal import Role
from shared.redis_client import create_redis
from shared.revocation import TokenRevocations

log = structlog.get_logger(__name__)


def private_key_pem(settings: GatewaySettings) -> str:
    return read_pem(
        settings.jwt_private_key,
        settings.jwt_private_key_file,
        missing="no JWT signing key: set CARELOOP_GATEWAY_JWT_PRIVATE_KEY (PEM) or "
        "CARELOOP_GATEWAY_JWT_PRIVATE_KEY_FILE",
    )


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
        attempts=LoginAttempts(
            redis,
            prefix=prefix,
            limit=settings.staff_max_failed_logins,
            lockout_seconds=settings.staff_lockout_minutes * 60,
        ),
        max_failed_logins=settings.staff_max_failed_logins,
        lockout=timedelta(minutes=settings.staff_lockout_minutes),
        lookup_timeout=settings.account_lookup_timeout_seconds,
    )


async def bootstrap_admin(settings: GatewaySettings, logins: Logins) -> None:
    """The first admin, from settings, when no staff account exists yet: the alliance's
    admin (no organization), who opens each organization's admins."""
    name, password = settings.bootstrap_admin_username, settings.bootstrap_admin_password
    if not (name and password) or await logins.staff.count() > 0:
        return
    await logins.staff.create(
        username=name,
        password_hash=await hash_password(password),
        roles=[Role.ALLIANCE_ADMIN],
        org_id=None,
        display_name="Administrator",
        created_by="bootstrap",
    )
    log.info("staff.bootstrap_admin_created", username=name)


@dataclass
class Gateway:
    settings: GatewaySettings
    http: httpx.AsyncClient  # to the services (and WeChat)
    own_http: httpx.AsyncClient  # to this app itself (the audit view's own part)
    redis: Any  # sessions, login codes: the gateway's own /v1/auth routes
    front_redis: Any  # the front door's script: its own pool (GatewaySettings.front_door_*)
    mongo: AsyncMongoClient[Document]
    db: Database
    proxy: UpstreamProxy
    audit: AuditLog
    traffic: TrafficPolicy
    logins: Logins
    token_verifier: TokenVerifier  # with logout and ended logins: the /v1/auth routes
    front_verifier: (
        TokenVerifier  # signature and claims only: the front door's script checks the rest
    )
    console_changes: ConsoleChanges  # the console's live changes (a Kafka consumer)

    def install(self, app: FastAPI) -> None:
        """Put every object where the routes and dependencies read it."""
        app.state.settings = self.settings
        app.state.http = self.http
        app.state.own_http = self.own_http
        app.state.redis = self.redis
        app.state.proxy = self.proxy
        app.state.audit = self.audit
        app.state.record_denial = partial(record_denial, self.audit)
        app.state.traffic = self.traffic
        app.state.logins = self.logins
        app.state.token_verifier = self.token_verifier
        app.state.front_verifier = self.front_verifier
        app.state.console_changes = self.console_changes

    async def start(self) -> None:
        await ensure_indexes(self.db, INDEXES)
        await self.audit.ensure_indexes()
        await bootstrap_admin(self.settings, self.logins)
        self.console_changes.start()  # in the background: Kafka need not be up yet

    async def aclose(self) -> None:
        await self.console_changes.aclose()
        await self.http.aclose()
        await self.own_http.aclose()
        await self.redis.aclose()
        await self.front_redis.aclose()
        await self.mongo.close()


def build(settings: GatewaySettings, metrics: ServiceMetrics, app: FastAPI) -> Gateway:
    """Every client and object of the gateway; ``app`` is what ``own_http`` calls."""
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(
            settings.upstream_timeout_seconds, connect=settings.upstream_connect_timeout_seconds
        ),
        limits=httpx.Limits(  # the exchanges, plus event streams (held open)
            max_connections=settings.upstream_max_connections + 2000,
            max_keepalive_connections=settings.upstream_max_connections,
        ),
    )
    redis = create_redis(settings.redis_url)
    front_redis = create_redis(
        settings.redis_url,
        max_connections=settings.front_door_redis_max_connections,
        wait_seconds=settings.front_door_redis_wait_seconds,
    )
    mongo = create_client(settings.mongo_url, app_name=settings.service_name)
    db = mongo[settings.database_name]
    own_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=OWN_BASE)
    proxy = UpstreamProxy(
        client,
        settings.service_urls,
        settings.idempotent_retries,
        timeout=settings.upstream_timeout_seconds,
        connect_timeout=settings.upstream_connect_timeout_seconds,
        pool_timeout=settings.upstream_pool_wait_seconds,
        max_in_flight=settings.upstream_max_connections,
        stream_idle_timeout=settings.stream_idle_timeout_seconds,
        max_response_bytes=settings.max_upstream_response_bytes,
    )
    traffic = TrafficPolicy(
        front_redis,
        settings.rate_limits,
        prefix=settings.redis_key_prefix,
        hash_key=settings.pii_hash_key.encode(),
        registry=metrics.registry,
    )
    logins = build_logins(settings, client, redis, db)
    return Gateway(
        settings=settings,
        http=client,
        own_http=own_http,
        redis=redis,
        front_redis=front_redis,
        mongo=mongo,
        db=db,
        proxy=proxy,
        audit=AuditLog(db),
        traffic=traffic,
        logins=logins,
        token_verifier=from_settings(
            settings,
            token_check=TokenRevocations(redis, prefix=settings.redis_key_prefix).check,
        ),
        front_verifier=from_settings(settings),
        console_changes=ConsoleChanges(settings),
    )
