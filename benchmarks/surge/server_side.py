"""How long the services themselves took: their ``careloop_http_request_seconds`` histograms
(every replica's, read on its own port) before and after the surge. A client-side latency far
above these was spent queueing before the app saw the request (the client's event loop, the
kernel's accept queue, the server's event loop) rather than in the app."""

from __future__ import annotations

import re

import httpx

from benchmarks.surge.seed import Running

BUCKET = re.compile(
    r"^careloop_http_request_seconds_bucket\{(?P<labels>.*)\} (?P<value>\S+)$"  # routes hold {}
)


async def buckets(running: Running, service: str, method: str) -> dict[float, float]:
    """Cumulative counts per upper bound (inf included) of ``method`` requests, summed over
    the replicas of ``service`` and over routes."""
    total: dict[float, float] = {}
    async with httpx.AsyncClient(timeout=30) as client:
        for proc in running.system.replicas(service):
            text = (await client.get(f"http://127.0.0.1:{proc.port}/metrics")).text
            for line in text.splitlines():
                match = BUCKET.match(line)
                if match and f'method="{method}"' in match["labels"]:
                    bound = re.search(r'le="([^"]+)"', match["labels"])
                    if bound:
                        le = float(bound[1])
                        total[le] = total.get(le, 0.0) + float(match["value"])
    return total


def quantiles(before: dict[float, float], after: dict[float, float]) -> dict[str, object]:
    """p50/p95/p99 as the histogram bucket holding them ("<= 0.25 s", "> 5 s")."""
    diff = {bound: after[bound] - before.get(bound, 0.0) for bound in sorted(after)}
    count = diff.get(float("inf"), 0.0)
    out: dict[str, object] = {"requests": int(count)}
    for q in (50, 95, 99):
        bound = next((b for b, c in diff.items() if count and c >= q / 100 * count), None)
        finite = [b for b in diff if b != float("inf")]
        if bound is None:
            out[f"p{q}"] = None
        elif bound == float("inf"):
            out[f"p{q}"] = f"> {max(finite):g} s" if finite else "?"
        else:
            out[f"p{q}"] = f"<= {bound:g} s"
    return out
