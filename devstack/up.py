"""``make up``: the whole system on the embedded stack, until Ctrl-C.

Data lives in ``.data/`` (git-ignored): Mongo data survives a restart; the embedded
broker keeps messages in memory only.

Settings (environment): ``CARELOOP_<NAME>_PORT`` for each port (gateway 8080, appointments
8101, referrals 8102, notifications 8103, followup 8104, kafka 9092, mongo 27017, redis
6379) and ``CARELOOP_<SERVICE>_WORKERS``, the replicas of a service on its port
(:data:`DEFAULT_WORKERS`). A port already in use stops ``make up`` before it starts anything
(exit 2, the port named), except Redis's: a Redis already listening there is used.
Every process dies with ``make up``, even when it is killed hard.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from devstack.keys import ensure_dev_secrets
from devstack.processes import PortTaken, refuse_taken_ports
from devstack.stack import EmbeddedStack
from devstack.system import SERVICES, System

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_PORTS = {
    "gateway": 8080,
    "appointments": 8101,
    "referrals": 8102,
    "notifications": 8103,
    "followup": 8104,
    "mllp": 2575,  # followup's HL7 v2 listener (CARELOOP_MLLP_PORT)
    "kafka": 9092,
    "mongo": 27017,
    "redis": 6379,
}
# Replicas per service, for a small (2-core) machine. Both services on the booking path are
# CPU-bound Python per request (token check, validation, the Redis script call, proxying or
# the Mongo write), and one process uses one core: with two replicas each, a surge keeps
# both cores busy even while a replica waits on Redis or Mongo. Measured with
# benchmarks/surge (make bench) on 2 cores: appointments x2 answered sold-out bookings
# about 1.5 times as fast as x1 (61 vs 40 a second at 32 connections), and a second
# gateway worker cut the surge's 5xx answers; more replicas than cores only add switching.
DEFAULT_WORKERS = {"gateway": 2, "appointments": 2}


def port_setting(name: str) -> str:
    return f"CARELOOP_{name.upper()}_PORT"


def configured_ports(environ: Mapping[str, str]) -> dict[str, int]:
    return {name: int(environ.get(port_setting(name), p)) for name, p in DEFAULT_PORTS.items()}


def configured_workers(environ: Mapping[str, str]) -> dict[str, int]:
    workers = {}
    for name in (*SERVICES, "gateway"):
        value = int(environ.get(f"CARELOOP_{name.upper()}_WORKERS", DEFAULT_WORKERS.get(name, 1)))
        if value < 1:
            raise ValueError(f"CARELOOP_{name.upper()}_WORKERS must be 1 or more, not {value}")
        workers[name] = value
    return workers


def hint(name: str, port: int) -> str:
    return f"start on another port: {port_setting(name)}={port + 1} make up"


def main() -> int:
    try:
        ports = configured_ports(os.environ)
        workers = configured_workers(os.environ)
        # Redis is the one shared server make up may reuse; every other port must be free
        refuse_taken_ports(
            (port, name, hint(name, port)) for name, port in ports.items() if name != "redis"
        )
    except (PortTaken, ValueError) as exc:
        print(f"make up: {exc}", file=sys.stderr, flush=True)
        return 2
    return run(ports, workers)


def run(ports: dict[str, int], workers: dict[str, int]) -> int:
    state = Path(os.environ.get("CARELOOP_STATE_DIR", ROOT / ".data"))
    secrets = ensure_dev_secrets(state)
    print("starting the embedded stack (Tansu, SecantusDB, Redis)...", flush=True)
    stack = EmbeddedStack.start(
        state,
        kafka_port=ports["kafka"],
        mongo_port=ports["mongo"],
        redis_port=ports["redis"],
        reuse_redis=True,
    )
    system = System(stack)
    stopping = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        names = (*SERVICES, "gateway")
        print(
            "starting services:",
            ", ".join(f"{n} ×{workers[n]}" if workers[n] > 1 else n for n in names),
            flush=True,
        )
        try:
            system.start_services(
                secrets,
                {name: ports[name] for name in names},
                workers=workers,
                port_hints={name: hint(name, ports[name]) for name in names},
                mllp_port=ports["mllp"],
            )
        except PortTaken as exc:  # taken since the check: stop what started
            print(f"make up: {exc}", file=sys.stderr, flush=True)
            return 2
        system.wait_ready()
        logs = state / "logs"
        replicas = "".join(
            f"\n  {name:<9} ×{workers[name]}, each replica's own readiness: "
            + " ".join(f"http://127.0.0.1:{proc.port}/readyz" for proc in system.replicas(name))
            for name in names
            if workers[name] > 1
        )
        print(
            f"""
CareLoop is up.
  gateway   {system.gateway_url}
  API docs  {system.gateway_url}/docs
  readiness {system.gateway_url}/readyz{replicas}
  HL7 MLLP  127.0.0.1:{system.mllp_port} (ADT^A03 discharges into followup)
  logs      {logs}/<name>.log
  admin     {secrets.admin_username!r}, password in {state}/keys/admin.json
  Kafka {stack.kafka_bootstrap} (in-memory) · MongoDB {stack.mongo_url} · Redis {stack.redis_url()}
Press Ctrl-C to stop.""",
            flush=True,
        )
        while not stopping:
            for name, proc in system.processes.items():
                if not proc.running:
                    print(f"{name} stopped unexpectedly; see {proc.log_path}", file=sys.stderr)
                    stopping = True
            time.sleep(0.5)
    finally:
        print("stopping...", flush=True)
        system.stop()
        print("stopped.", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
