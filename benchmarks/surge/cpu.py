"""Where the CPU went during the surge: seconds of CPU per process (Linux ``/proc``), for
the benchmark's own client too, since it shares the machine with the system it loads."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from benchmarks.surge.seed import Running

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (0 when unknown)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def processes(running: Running) -> dict[str, list[int]]:
    """The pids of each part: the client (this process), each service, each server."""
    parts: dict[str, list[int]] = {"benchmark client": [os.getpid()]}
    for label, proc in running.system.processes.items():
        if proc.proc is not None:
            parts.setdefault(label.split(".")[0], []).append(proc.proc.pid)
    stack = running.system.stack
    for name, server in (("kafka", stack.kafka), ("mongo", stack.mongo), ("redis", stack.redis)):
        if server is not None and server.proc is not None:
            parts[name] = [server.proc.pid]
    return parts


def snapshot(parts: dict[str, list[int]]) -> Counter[str]:
    return Counter({name: sum(cpu_seconds(pid) for pid in pids) for name, pids in parts.items()})


def used(before: Counter[str], after: Counter[str]) -> dict[str, float]:
    return {name: round(after[name] - before[name], 1) for name in after}
