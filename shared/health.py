"""``/healthz`` (alive), ``/readyz`` (Mongo, Kafka, Redis answer) and ``/metrics``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.metrics import ServiceMetrics

Check = Callable[[], Awaitable[object]]


class ReadinessChecks:
    """Named dependency checks, each with a timeout; results cached for a moment."""

    def __init__(
        self, checks: dict[str, Check], *, timeout: float = 2.0, cache_seconds: float = 1.0
    ) -> None:
        self.checks = checks
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self._cached: tuple[float, dict[str, str]] | None = None

    async def _one(self, check: Check) -> str:
        try:
            await asyncio.wait_for(check(), self.timeout)
            return "ok"
        except Exception as exc:
            return f"failing: {type(exc).__name__}"

    async def run(self) -> dict[str, str]:
        now = time.monotonic()
        if self._cached and now - self._cached[0] < self.cache_seconds:
            return self._cached[1]
        names = list(self.checks)
        results = await asyncio.gather(*(self._one(self.checks[n]) for n in names))
        status = dict(zip(names, results, strict=True))
        self._cached = (now, status)
        return status


def health_router(service: str, checks: ReadinessChecks, metrics: ServiceMetrics) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @router.get("/readyz", summary="Readiness: Mongo, Kafka and Redis answer")
    async def readyz(request: Request) -> JSONResponse:
        status = await checks.run()
        ready = all(v == "ok" for v in status.values())
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "service": service, "checks": status},
            status_code=200 if ready else 503,
        )

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
