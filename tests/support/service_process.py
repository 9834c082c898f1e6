"""Run a service as its own process (``python -m services.<name>``) with test settings."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from devstack.processes import ManagedProcess, free_port
from shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
Starter = Callable[[], ManagedProcess]


def service_process(name: str, settings: ServiceSettings, logs: Path) -> ManagedProcess:
    port = free_port()
    prefix = f"CARELOOP_{name.upper()}_"
    values = settings.model_dump(mode="json", exclude={"service_name"})
    env = {"PYTHONUNBUFFERED": "1"}
    for key, value in values.items():
        if value is None:
            continue
        # an empty string is a setting too (quiet hours off, say): it is passed, not dropped
        text = value if isinstance(value, str) else json.dumps(value)
        env[prefix + key.upper()] = text
    env[prefix + "HTTP_PORT"] = str(port)
    env[prefix + "LOG_LEVEL"] = "WARNING"
    return ManagedProcess(
        name=name,
        argv=[sys.executable, "-m", f"services.{name}"],
        port=port,
        log_path=logs / f"{name}.log",
        env=env,
        cwd=ROOT,
    )


@contextmanager
def restartable(name: str, settings: ServiceSettings, logs: Path) -> Iterator[Starter]:
    """``start()`` runs the service as a new process on ``settings`` each time it is called
    (a crash test kills one and starts the next); every one is stopped at the end."""
    started: list[ManagedProcess] = []

    def start() -> ManagedProcess:
        proc = service_process(name, settings, logs).start(timeout=60)
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            with contextlib.suppress(Exception):
                proc.stop()


async def wait_ready(base: str, *, timeout: float = 60.0) -> None:
    """Until the service at ``base`` answers ``/readyz`` with 200."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{base} did not get ready in {timeout} s")
