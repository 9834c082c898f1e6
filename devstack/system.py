"""The whole CareLoop system as local processes: the embedded stack, four services, gateway."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devstack.keys import DevSecrets, secret_env
from devstack.processes import ManagedProcess, free_port
from devstack.stack import EmbeddedStack

SERVICES = ("appointments", "referrals", "notifications", "followup")
REDIS_DBS = {"appointments": 1, "referrals": 2, "notifications": 3, "followup": 4, "gateway": 0}


def service_env(
    name: str,
    stack: EmbeddedStack,
    secrets: DevSecrets,
    port: int,
    *,
    db_suffix: str = "",
    partitions: int = 6,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of one process (added to the operator's own, which it overrides
    except for secrets: those the operator sets win over ``.data/keys``)."""
    prefix = f"CARELOOP_{name.upper()}_"
    plain = {"PYTHONUNBUFFERED": "1"}
    values = {
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(port),
        "MONGO_URL": stack.mongo_url,
        "MONGO_DB": f"careloop_{name}{db_suffix}",
        "KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "KAFKA_PARTITIONS": str(partitions),
        "REDIS_URL": stack.redis_url(REDIS_DBS[name]),
    }
    # secrets from the dev files only where the operator's environment sets none
    dev_secrets = secret_env(
        prefix,
        secrets,
        gateway=name == "gateway",
        environ=os.environ if environ is None else environ,
    )
    return {**plain, **{prefix + key: value for key, value in values.items()}, **dev_secrets}


@dataclass
class System:
    stack: EmbeddedStack
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def service_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start_services(
        self,
        secrets: DevSecrets,
        ports: dict[str, int] | None = None,
        *,
        db_suffix: str = "",
        partitions: int = 6,
        extra_env: dict[str, dict[str, str]] | None = None,
    ) -> None:
        """Start every service and the gateway; ``extra_env`` adds variables per process."""
        logs = self.stack.state_dir / "logs"
        self.ports = ports or {name: free_port() for name in (*SERVICES, "gateway")}
        urls = {name: self.service_url(name) for name in SERVICES}
        for name in (*SERVICES, "gateway"):
            env = service_env(
                name,
                self.stack,
                secrets,
                self.ports[name],
                db_suffix=db_suffix,
                partitions=partitions,
            )
            if name == "gateway":
                env["CARELOOP_GATEWAY_SERVICE_URLS"] = json.dumps(urls)
            env.update((extra_env or {}).get(name, {}))
            proc = ManagedProcess(
                name=name,
                argv=[sys.executable, "-m", f"services.{name}"],
                port=self.ports[name],
                log_path=logs / f"{name}.log",
                env=env,
                cwd=Path(__file__).resolve().parent.parent,
            )
            self.processes[name] = proc.start(wait=False)

    def wait_ready(self, timeout: float = 90.0) -> dict[str, str]:
        """Wait until every service and the gateway answer ``/readyz`` with 200."""
        deadline = time.monotonic() + timeout
        pending = dict(self.ports)
        status: dict[str, str] = {}
        with httpx.Client(timeout=2.0) as client:
            while pending and time.monotonic() < deadline:
                for name, port in list(pending.items()):
                    proc = self.processes[name]
                    if not proc.running:
                        tail = proc.log_path.read_text(errors="replace")[-3000:]
                        raise RuntimeError(f"{name} exited during start-up:\n{tail}")
                    try:
                        response = client.get(f"http://127.0.0.1:{port}/readyz")
                    except httpx.HTTPError:
                        continue
                    status[name] = "ready" if response.status_code == 200 else "starting"
                    if response.status_code == 200:
                        del pending[name]
                time.sleep(0.2)
        if pending:
            raise TimeoutError(f"not ready after {timeout}s: {sorted(pending)}")
        return status

    def stop(self) -> None:
        for name in ("gateway", *SERVICES):
            if name in self.processes:
                self.processes[name].stop()
        self.stack.stop()
