"""The service app factory: one FastAPI app with its consumers, relay and job runner.

Every client is built in the lifespan (no import-time connections). A service describes
itself with a :class:`ServiceDefinition`; this module wires the platform around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request, Response
from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.audit import AuditLog, record_denial
from shared.audit_routes import audit_router
from shared.auth import TokenVerifier
from shared.auth import from_settings as verifier_from_settings
from shared.consumer import ConsumerRunner, ConsumerSpec
from shared.dead_letters import DEAD_LETTER_INDEXES
from shared.handled_events import HANDLED_EVENTS_INDEXES
from shared.health import ReadinessChecks, health_router
from shared.http import RequestContextMiddleware
from shared.ids import new_id
from shared.jobs import JOB_INDEXES, JobHandler, JobRunner
from shared.kafka import KafkaProbe, ensure_topics
from shared.logging import configure_logging
from shared.metrics import ServiceMetrics
from shared.mongo import (
    CollectionIndexes,
    Contended,
    Database,
    Document,
    create_client,
    ensure_indexes,
)
from shared.ops_routes import ops_router
from shared.outbox import OUTBOX_INDEXES, Outbox
from shared.outbox_relay import OutboxRelay
from shared.pii_rotation import EncryptedField
from shared.problems import ServiceUnavailable, install_problem_handlers, problem_response
from shared.redis_client import create_redis
from shared.revocation import TokenRevocations
from shared.settings import ServiceSettings

log = structlog.get_logger(__name__)

PLATFORM_INDEXES = [
    OUTBOX_INDEXES,
    HANDLED_EVENTS_INDEXES,
    DEAD_LETTER_INDEXES,
    JOB_INDEXES,
    CollectionIndexes("leases"),
]


@dataclass
class Runtime:
    """Everything a running service holds; found on ``app.state.runtime``."""

    settings: ServiceSettings
    replica_id: str
    metrics: ServiceMetrics
    mongo: AsyncMongoClient[Document]
    db: Database
    redis: Redis
    outbox: Outbox
    audit: AuditLog
    verifier: TokenVerifier
    kafka_probe: KafkaProbe
    auth_redis: Redis | None = None  # the gateway's Redis when it is not ``redis``
    relay: OutboxRelay | None = None
    consumers: list[ConsumerRunner] = field(default_factory=list)
    jobs: JobRunner | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class ServiceDefinition:
    """What a service adds to the platform."""

    settings: ServiceSettings
    title: str
    routers: Sequence[APIRouter] = ()
    indexes: Sequence[CollectionIndexes] = ()
    consumers: Callable[[Runtime], list[ConsumerSpec]] = lambda _rt: []
    jobs: Callable[[Runtime], dict[str, JobHandler]] = lambda _rt: {}
    on_start: Callable[[Runtime], Awaitable[None]] | None = None
    on_stop: Callable[[Runtime], Awaitable[None]] | None = None
    extra_topics: Sequence[str] = ()
    run_workers: bool = True  # relay, consumers and jobs; tests may run them on their own
    encrypted_fields: Sequence[EncryptedField] = ()  # re-encrypted after a PII key rotation


def make_replica_id(service: str) -> str:
    return f"{service}@{socket.gethostname()}:{os.getpid()}:{new_id()[-8:]}"


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def start_runtime(
    definition: ServiceDefinition, metrics: ServiceMetrics | None = None
) -> Runtime:
    settings = definition.settings
    metrics = metrics or ServiceMetrics(settings.service_name)
    mongo = create_client(settings.mongo_url, app_name=settings.service_name)
    db: Database = mongo[settings.database_name]
    outbox = Outbox(mongo, db, settings.own_topic)
    # behind the gateway's load shedding a service waits its turn for Redis rather
    # than failing a request that already got this far
    redis = create_redis(settings.redis_url, max_connections=500, wait_seconds=10.0)
    auth_redis = None
    if settings.auth_redis_url and settings.auth_redis_url != settings.redis_url:
        auth_redis = create_redis(settings.auth_redis_url, max_connections=200, wait_seconds=2.0)
    revocations = TokenRevocations(
        auth_redis or redis,
        prefix=(
            settings.redis_key_prefix
            if settings.auth_redis_key_prefix is None
            else settings.auth_redis_key_prefix
        ),
        cache_seconds=settings.auth_revocation_cache_seconds,
        cache_size=settings.auth_revocation_cache_size,
    )
    runtime = Runtime(
        settings=settings,
        replica_id=make_replica_id(settings.service_name),
        metrics=metrics,
        mongo=mongo,
        db=db,
        redis=redis,
        outbox=outbox,
        audit=AuditLog(db),
        # logouts and ended logins are refused here too, not only at the gateway
        verifier=verifier_from_settings(settings, token_check=revocations.check),
        kafka_probe=KafkaProbe(settings.kafka_bootstrap),
        auth_redis=auth_redis,
    )
    await ensure_indexes(db, [*PLATFORM_INDEXES, *definition.indexes])
    await runtime.audit.ensure_indexes()
    if definition.on_start is not None:
        await definition.on_start(runtime)
    if definition.run_workers:
        start_workers(runtime, definition)
    return runtime


def start_workers(runtime: Runtime, definition: ServiceDefinition) -> None:
    settings = runtime.settings
    runtime.relay = OutboxRelay(
        runtime.outbox, settings, replica_id=runtime.replica_id, metrics=runtime.metrics
    )
    runtime.consumers = [
        ConsumerRunner(spec, runtime.outbox, settings, metrics=runtime.metrics)
        for spec in definition.consumers(runtime)
    ]
    handlers = definition.jobs(runtime)
    if handlers:
        runtime.jobs = JobRunner(
            runtime.outbox,
            settings,
            handlers,
            worker_id=runtime.replica_id,
            metrics=runtime.metrics,
        )
    topics = {settings.own_topic, *definition.extra_topics}
    runtime.tasks.append(
        asyncio.create_task(_create_topics(settings, sorted(topics)), name="create-topics")
    )
    runtime.tasks.append(asyncio.create_task(runtime.relay.run(), name="outbox-relay"))
    for runner in runtime.consumers:
        runtime.tasks.append(asyncio.create_task(runner.run(), name=runner.consumer_name))
    if runtime.jobs is not None:
        runtime.tasks.append(asyncio.create_task(runtime.jobs.run(), name="jobs"))


async def _create_topics(settings: ServiceSettings, topics: list[str]) -> None:
    """Create our topics at start-up; retry in the background while the broker is away."""
    delay = 0.5
    while True:
        try:
            await ensure_topics(
                settings.kafka_bootstrap,
                topics,
                partitions=settings.kafka_partitions,
                replication_factor=settings.kafka_replication_factor,
            )
            return
        except Exception as exc:
            log.warning("kafka.topics_retry", error=str(exc), delay_seconds=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)


async def stop_runtime(runtime: Runtime, definition: ServiceDefinition) -> None:
    """Graceful stop: workers finish what they hold and commit, then clients close."""
    if runtime.relay:
        runtime.relay.stop()
    for runner in runtime.consumers:
        runner.stop()
    if runtime.jobs:
        runtime.jobs.stop()
    if runtime.tasks:
        # workers finish what they hold; one still joining its group is cancelled: its
        # offsets are uncommitted, so whatever it had is delivered again (at least once)
        _done, pending = await asyncio.wait(runtime.tasks, timeout=3)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if definition.on_stop is not None:
        await definition.on_stop(runtime)
    await runtime.kafka_probe.close()
    await runtime.redis.aclose()
    if runtime.auth_redis is not None:
        await runtime.auth_redis.aclose()
    await runtime.mongo.close()


async def _contended(request: Request, exc: Exception) -> Response:
    """Too many concurrent writers on one document: a fast 503 the client may retry."""
    problem = ServiceUnavailable(
        "write_conflict",
        "too many concurrent changes; try again",
        detail_zh="当前操作人数较多，请稍后重试",
        retry_after=1,
    )
    return problem_response(problem, request)


async def _redis_failed(request: Request, exc: Exception) -> Response:
    """Redis away or out of connections: a 503 the client may retry, never a 500."""
    log.warning("service.redis_failed", error=str(exc))
    problem = ServiceUnavailable(
        "service_busy",
        "the service is busy; try again shortly",
        detail_zh="系统繁忙，请稍后再试",
        retry_after=1,
    )
    return problem_response(problem, request)


def create_service_app(definition: ServiceDefinition) -> FastAPI:
    settings = definition.settings
    configure_logging(settings.service_name, settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await start_runtime(definition, metrics)
        app.state.runtime = runtime
        app.state.record_denial = partial(record_denial, runtime.audit)
        app.state.token_verifier = runtime.verifier
        checks.checks.update(
            {
                "mongo": lambda: runtime.mongo.admin.command("ping"),
                "kafka": runtime.kafka_probe.check,
                "redis": runtime.redis.ping,
            }
        )
        log.info("service.started", replica=runtime.replica_id)
        try:
            yield
        finally:
            await stop_runtime(runtime, definition)
            log.info("service.stopped", replica=runtime.replica_id)

    app = FastAPI(
        title=definition.title,
        version="0.1.0",
        lifespan=lifespan,
        openapi_url=f"/v1/{settings.service_name}/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    metrics = ServiceMetrics(settings.service_name)
    checks = ReadinessChecks({})
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    install_problem_handlers(app)
    app.add_exception_handler(Contended, _contended)
    app.add_exception_handler(RedisError, _redis_failed)
    app.include_router(health_router(settings.service_name, checks, metrics))
    app.include_router(ops_router(settings.service_name, list(definition.encrypted_fields)))
    app.include_router(audit_router(settings.service_name))
    for router in definition.routers:
        app.include_router(router)
    return app
