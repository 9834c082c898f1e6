"""``python -m benchmarks.surge [--patients N] [--numbers M]`` (``make bench SURGE_PATIENTS=N``).

Starts the whole system as ``make up`` does (its replicas: ``CARELOOP_<SERVICE>_WORKERS``)
on free ports in a temporary folder, seeds it, runs the surge and the steady wrk load,
prints a table and writes JSON and a PNG chart to ``.data/bench/``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.surge import cpu, crowd, report, seed, server_side, steady
from devstack.up import configured_workers

ROOT = Path(__file__).resolve().parents[2]
INSIDE = ("gateway", "appointments")  # whose own request timings the report shows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    env = os.environ.get
    parser.add_argument("--patients", type=int, default=int(env("SURGE_PATIENTS", 10_000)))
    parser.add_argument("--numbers", type=int, default=int(env("SURGE_NUMBERS", 500)))
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds a patient tries")
    parser.add_argument("--wrk-seconds", type=int, default=10)
    parser.add_argument("--wrk-connections", type=int, default=32)
    parser.add_argument("--out", type=Path, default=ROOT / ".data" / "bench")
    args = parser.parse_args()
    if args.patients > 254 * 256 - 1:
        parser.error("at most 65,023 patients: one 127.1.x.y address each")
    steady.ensure_wrk()  # before anything starts: a missing tool fails fast
    work = Path(tempfile.mkdtemp(prefix="careloop-surge-"))
    started = time.perf_counter()
    print(f"starting the system in {work} ...", flush=True)
    running = seed.start_system(work)
    try:
        print(
            f"  up after {time.perf_counter() - started:.0f} s; seeding {args.patients} "
            f"patients and a session of {args.numbers} numbers ...",
            flush=True,
        )
        result = asyncio.run(run(running, args, work))
    finally:
        running.stop()
    data, picture = report.write(result, args.out, datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    print(report.table(result))
    print(f"written: {data} and {picture} ({time.perf_counter() - started:.0f} s in all)")


async def run(running: seed.Running, args: argparse.Namespace, work: Path) -> dict[str, object]:
    t0 = time.perf_counter()
    schedules = await seed.publish_session(running, args.numbers)
    patients = await seed.add_patients(running, args.patients, schedules)
    seeded = time.perf_counter() - t0
    quiet = await seed.wait_quiet(running)
    print(f"  seeded in {seeded:.0f} s, quiet {quiet:.0f} s later; release!", flush=True)
    parts = cpu.processes(running)
    before = cpu.snapshot(parts)
    inside = {name: await server_side.buckets(running, name, "POST") for name in INSIDE}
    results, wall = await crowd.surge(patients, running.gateway, deadline=args.deadline)
    cpu_used = cpu.used(before, cpu.snapshot(parts))
    inside_latency = {
        name: server_side.quantiles(then, await server_side.buckets(running, name, "POST"))
        for name, then in inside.items()
    }
    counted = report.overbooking(running.mongo_url, schedules, args.numbers)
    # every patient without a booking books again: the session is sold out for them all
    unbooked = [r.patient for r in results if r.outcome != "booked"]
    print(f"  surge over in {wall:.1f} s; steady load with wrk ...", flush=True)
    booking, healthz = await asyncio.to_thread(
        steady.sold_out_vs_healthz,
        running.gateway,
        unbooked or [r.patient for r in results],
        work,
        connections=args.wrk_connections,
        seconds=args.wrk_seconds,
    )
    settings = {
        "patients": args.patients,
        "numbers": args.numbers,
        "schedules": schedules,
        "deadline_seconds": args.deadline,
        "wrk_connections": args.wrk_connections,
        "wrk_seconds": args.wrk_seconds,
        "workers": configured_workers(os.environ),
        "cpus": os.cpu_count(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    summary = report.summarize(results, wall, counted, booking, healthz, settings)
    summary["surge"]["cpu_seconds"] = cpu_used
    summary["surge"]["bookings_inside_the_services"] = inside_latency
    return summary


if __name__ == "__main__":
    main()
