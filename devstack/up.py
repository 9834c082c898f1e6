"""``make up``: the whole system on the embedded stack, until Ctrl-C.

Data lives in ``.data/`` (git-ignored): Mongo data survives a restart; the embedded
broker keeps messages in memory only.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from devstack.keys import ensure_dev_secrets
from devstack.stack import EmbeddedStack
from devstack.system import SERVICES, System

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    state = Path(os.environ.get("CARELOOP_STATE_DIR", ROOT / ".data"))
    secrets = ensure_dev_secrets(state)
    print("starting the embedded stack (Tansu, SecantusDB, Redis)...", flush=True)
    stack = EmbeddedStack.start(
        state,
        kafka_port=int(os.environ.get("CARELOOP_KAFKA_PORT", "9092")),
        mongo_port=int(os.environ.get("CARELOOP_MONGO_PORT", "27017")),
        redis_port=int(os.environ.get("CARELOOP_REDIS_PORT", "6379")),
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
        ports = {
            "appointments": 8101,
            "referrals": 8102,
            "notifications": 8103,
            "followup": 8104,
            "gateway": int(os.environ.get("CARELOOP_GATEWAY_PORT", "8080")),
        }
        print("starting services:", ", ".join((*SERVICES, "gateway")), flush=True)
        system.start_services(secrets, ports)
        system.wait_ready()
        logs = state / "logs"
        print(
            f"""
CareLoop is up.
  gateway   {system.gateway_url}
  API docs  {system.gateway_url}/docs
  readiness {system.gateway_url}/readyz
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
