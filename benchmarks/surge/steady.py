"""Steady load with wrk (Debian package ``wrk``, installed here when missing, as ``.ci/run``
installs its tools): sold-out bookings against the gateway's bare ``/healthz``, both at the
same concurrency, one after the other in the same run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.surge.seed import Patient

SCRIPT = Path(__file__).with_name("steady.lua")


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError("wrk is missing: install the Debian package wrk (as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("apt-get installed wrk, but it is not on PATH")
    return found


@dataclass(frozen=True)
class WrkRun:
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    statuses: dict[str, int]
    errors: dict[str, int]

    def rate(self, status: str | None = None) -> float:
        count = self.requests if status is None else self.statuses.get(status, 0)
        return count / self.seconds if self.seconds else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "per_second": round(self.rate(), 1),
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "statuses": self.statuses,
            "errors": self.errors,
        }


def run_wrk(url: str, args: list[str], *, connections: int, seconds: int) -> WrkRun:
    argv = [ensure_wrk(), "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    argv += ["-s", str(SCRIPT), url, "--", *args]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 60)
    line = next((x for x in reversed(done.stdout.splitlines()) if x.startswith("{")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")
    raw = json.loads(line)
    return WrkRun(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1000,
        p95_ms=raw["p95_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        statuses=raw["statuses"],
        errors=raw["errors"],
    )


def sold_out_vs_healthz(
    gateway: str,
    sold_out: list[Patient],
    work: Path,
    *,
    connections: int = 32,
    seconds: int = 10,
) -> tuple[WrkRun, WrkRun]:
    """(sold-out bookings, bare healthz), each ``seconds`` long at ``connections``."""
    roster = work / "sold_out_patients.tsv"
    roster.write_text(
        "".join(f"{p.token}\t{p.patient_id}\t{p.address}\t{p.schedule_id}\n" for p in sold_out)
    )
    healthz = run_wrk(f"{gateway}/healthz", ["healthz"], connections=connections, seconds=seconds)
    booking = run_wrk(
        f"{gateway}/v1/appointments/appointments",
        ["soldout", str(roster)],
        connections=connections,
        seconds=seconds,
    )
    return booking, healthz
