"""The whole CareLoop system as local processes: the embedded stack, four services, gateway.

A service runs as one process (``python -m services.<name>``) or as several replicas on one
port (``workers``): the supervisor binds the port once, refusing it when taken, and hands the
listening socket to each replica (:mod:`devstack.serve`); each replica also gets a private
port of its own for its readiness. ``processes`` holds every replica: ``gateway`` is the
first, ``gateway.2`` the second, and so on.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devstack.keys import DevSecrets, secret_env
from devstack.processes import ManagedProcess, free_port, listen_socket
from devstack.stack import EmbeddedStack

ROOT = Path(__file__).resolve().parent.parent

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
    if name != "gateway":  # logouts and ended logins live in the gateway's Redis db
        values["AUTH_REDIS_URL"] = stack.redis_url(REDIS_DBS["gateway"])
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
    workers: dict[str, int] = field(default_factory=dict)
    mllp_port: int = 0  # followup's HL7 v2 (MLLP) listener
    _later: dict[str, tuple[socket.socket, dict[str, str], Path]] = field(default_factory=dict)

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
        workers: Mapping[str, int] | None = None,
        port_hints: Mapping[str, str] | None = None,
        mllp_port: int | None = None,
    ) -> None:
        """Start every service and the gateway; ``extra_env`` adds variables per process,
        ``workers`` runs that many replicas of a service on its port (default one), and
        ``port_hints`` completes the refusal of a taken port (what the operator may set)."""
        logs = self.stack.state_dir / "logs"
        self.ports = ports or {name: free_port() for name in (*SERVICES, "gateway")}
        self.workers = {name: max(1, (workers or {}).get(name, 1)) for name in self.ports}
        self.mllp_port = mllp_port or free_port()
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
            if name == "followup":
                env["CARELOOP_FOLLOWUP_MLLP_PORT"] = str(self.mllp_port)
            env.update((extra_env or {}).get(name, {}))
            log_path = logs / f"{name}.log"
            if self.workers[name] == 1:
                proc = ManagedProcess(
                    name=name,
                    argv=[sys.executable, "-m", f"services.{name}"],
                    port=self.ports[name],
                    log_path=log_path,
                    env=env,
                    cwd=ROOT,
                )
                self.processes[name] = proc.start(wait=False)
                continue
            hint = (port_hints or {}).get(name, "")
            shared = listen_socket(self.ports[name], name, hint=hint)
            self.processes[name] = _replica(name, name, shared, env, log_path)
            # the others once the first is ready: it alone creates collections and indexes
            self._later[name] = (shared, env, log_path)

    def _start_other_replicas(self, name: str) -> list[str]:
        shared, env, log_path = self._later.pop(name)
        with shared:
            labels = [f"{name}.{n}" for n in range(2, self.workers[name] + 1)]
            for label in labels:
                self.processes[label] = _replica(label, name, shared, env, log_path)
        return labels

    def replicas(self, name: str) -> list[ManagedProcess]:
        """Every process of service ``name``, the first one first."""
        return [
            proc
            for label, proc in self.processes.items()
            if label == name or label.startswith(f"{name}.")
        ]

    def wait_ready(self, timeout: float = 90.0) -> dict[str, str]:
        """Wait until every process (each replica) answers ``/readyz`` with 200."""
        deadline = time.monotonic() + timeout
        pending = {label: proc.port for label, proc in self.processes.items()}
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
                        if name in self._later:
                            for label in self._start_other_replicas(name):
                                pending[label] = self.processes[label].port
                time.sleep(0.2)
        if pending:
            raise TimeoutError(f"not ready after {timeout}s: {sorted(pending)}")
        return status

    def stop(self) -> None:
        for shared, _env, _log in self._later.values():
            shared.close()
        self._later.clear()
        for name in ("gateway", *SERVICES):
            for proc in self.replicas(name):
                proc.stop()
        self.stack.stop()


def _replica(
    label: str, name: str, shared: socket.socket, env: dict[str, str], log_path: Path
) -> ManagedProcess:
    """Start one replica of ``name`` on the ``shared`` socket and a private one of its own
    (its ``port``); the parent's copies of both close once the child holds them."""
    with listen_socket(0, f"{label} private") as private:
        port = int(private.getsockname()[1])
        fds = (shared.fileno(), private.fileno())
        proc = ManagedProcess(
            name=label,
            argv=[sys.executable, "-m", "devstack.serve", name, *map(str, fds)],
            port=port,
            log_path=log_path,
            env=env,
            cwd=ROOT,
            pass_fds=fds,
        )
        return proc.start(wait=False)
