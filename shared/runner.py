"""Run a service as one process: ``python -m services.<name>``; SIGTERM stops it cleanly."""

from __future__ import annotations

from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from shared.settings import ServiceSettings


def run_service(
    create_app: Callable[[ServiceSettings], FastAPI], settings: ServiceSettings
) -> None:
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=20,
        lifespan="on",
        proxy_headers=True,
        server_header=False,
    )
