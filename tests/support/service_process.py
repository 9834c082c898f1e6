"""Run a service as its own process (``python -m services.<name>``) with test settings."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from devstack.processes import ManagedProcess, free_port
from shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]


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
