"""What the surge did: rates, latency per outcome, overbooking (counted in Mongo), patients
left without a definitive answer, the sold-out vs ``/healthz`` ratio; a table, JSON, a chart."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from benchmarks.surge.crowd import DEFINITIVE, Answer, Result
from benchmarks.surge.steady import WrkRun


def label(answer: Answer) -> str:
    if answer.status == 0:
        return f"no answer ({answer.code})"
    if answer.status == 409:
        return "409 slot_sold_out" if answer.code == "slot_sold_out" else f"409 {answer.code}"
    names = {201: "201 booked", 202: "202 queued"}
    return names.get(answer.status, f"{answer.status} {answer.code}".strip())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def latency_row(values: list[float]) -> dict[str, float]:
    return {
        "count": len(values),
        **{f"p{q}_ms": round(percentile(values, q) * 1000, 1) for q in (50, 95, 99)},
    }


def overbooking(mongo_url: str, schedules: list[str], numbers: int) -> dict[str, int]:
    """Counted in the appointments database, whatever the answers said."""
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_url)
    try:
        bookings = client["careloop_appointments"]["appointments"]
        active = list(bookings.find({"schedule_id": {"$in": schedules}, "active": True}))
    finally:
        client.close()
    per_slot = Counter(str(b.get("slot_id")) for b in active)
    per_patient = Counter(str(b.get("patient_id")) for b in active)
    return {
        "numbers": numbers,
        "active_bookings": len(active),
        "slots_booked_more_than_once": sum(1 for n in per_slot.values() if n > 1),
        "bookings_beyond_numbers": max(0, len(active) - numbers),
        "patients_booked_more_than_once": sum(1 for n in per_patient.values() if n > 1),
    }


def summarize(
    results: list[Result],
    wall: float,
    counted: dict[str, int],
    booking: WrkRun,
    healthz: WrkRun,
    settings: dict[str, Any],
) -> dict[str, Any]:
    answers = [a for r in results for a in r.answers]
    by_label: dict[str, list[float]] = defaultdict(list)
    for answer in answers:
        by_label[label(answer)].append(answer.latency)
    outcomes = Counter(r.outcome for r in results)
    confirmed = outcomes["booked"]
    queued = [r.queued_wait for r in results if r.queued_wait is not None]
    sold_out_at = max((r.done_at for r in results if r.outcome == "booked"), default=0.0)
    responses = sum(1 for a in answers if a.status)
    undecided = {k: v for k, v in outcomes.items() if k not in DEFINITIVE}
    sold_out_rate = booking.rate("409_slot_sold_out")
    return {
        "settings": settings,
        "surge": {
            "patients": len(results),
            "seconds": round(wall, 3),
            "attempts": len(answers),
            "answers": responses,
            "confirmed": confirmed,
            "attempts_per_second": round(len(answers) / wall, 1),
            "answers_per_second": round(responses / wall, 1),
            "confirmed_per_second": round(confirmed / wall, 1),
            "last_number_confirmed_after_seconds": round(sold_out_at, 3),
            "server_errors_5xx": sum(1 for a in answers if a.status >= 500),
            "latency_by_answer": {k: latency_row(v) for k, v in sorted(by_label.items())},
            "queued_to_final": latency_row(queued) if queued else None,
            "outcomes": dict(outcomes),
            "left_without_definitive_answer": sum(undecided.values()),
            "left_without_definitive_answer_by_reason": undecided,
            "answer_times": [[round(a.at, 3), label(a)] for a in answers],
        },
        "overbooking": counted
        | {"bookings_their_patient_never_learned_of": counted["active_bookings"] - confirmed},
        "steady": {
            "connections": settings["wrk_connections"],
            "sold_out": booking.as_json(),
            "healthz": healthz.as_json(),
            "sold_out_per_second": round(sold_out_rate, 1),
            "healthz_per_second": round(healthz.rate(), 1),
            "ratio_sold_out_to_healthz": round(sold_out_rate / healthz.rate(), 3)
            if healthz.rate()
            else None,
        },
    }


def table(report: dict[str, Any]) -> str:
    s, o, w = report["surge"], report["overbooking"], report["steady"]
    lines = [
        f"surge: {s['patients']} patients, {o['numbers']} numbers (one morning session, "
        f"{len(report['settings']['schedules'])} doctors' schedules), one release, through the "
        f"gateway; replicas {report['settings']['workers']}",
        f"  {s['seconds']:.2f} s until every patient had an answer or gave up; "
        f"last number confirmed after {s['last_number_confirmed_after_seconds']:.2f} s",
        f"  attempts/s {s['attempts_per_second']:>9.1f}   ({s['attempts']} attempts)",
        f"  answers/s  {s['answers_per_second']:>9.1f}   ({s['answers']} answers)",
        f"  confirmed/s{s['confirmed_per_second']:>9.1f}   ({s['confirmed']} confirmed)",
        f"  {'answer':<28}{'count':>8}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}",
    ]
    rows = dict(s["latency_by_answer"])
    if s["queued_to_final"]:
        rows["202 -> final (polling)"] = s["queued_to_final"]
    for name, row in rows.items():
        lines.append(
            f"  {name:<28}{row['count']:>8}{row['p50_ms']:>10.1f}{row['p95_ms']:>10.1f}"
            f"{row['p99_ms']:>10.1f}"
        )
    lines += [
        f"  5xx answers: {s['server_errors_5xx']}",
        f"  booking POSTs as the services timed them (histogram buckets): "
        f"{s.get('bookings_inside_the_services')}",
        f"  CPU seconds used during the surge ({s['seconds']:.0f} s x {report['settings']['cpus']}"
        f" cores): {s.get('cpu_seconds')}",
        f"  outcomes: {s['outcomes']}",
        f"  patients left without a definitive answer: {s['left_without_definitive_answer']}"
        f" {s['left_without_definitive_answer_by_reason'] or ''}",
        f"overbooking (Mongo): {o['active_bookings']} active bookings for {o['numbers']} "
        f"numbers; slots booked twice {o['slots_booked_more_than_once']}; beyond the numbers "
        f"{o['bookings_beyond_numbers']}; patients booked twice "
        f"{o['patients_booked_more_than_once']}; bookings whose patient never learned of "
        f"them {o['bookings_their_patient_never_learned_of']}",
        f"steady, wrk, {w['connections']} connections, {w['sold_out']['seconds']:.0f} s each:",
        f"  sold-out answers/s {w['sold_out_per_second']:>9.1f}  p50 {w['sold_out']['p50_ms']:.1f} "
        f"p99 {w['sold_out']['p99_ms']:.1f} ms  {w['sold_out']['statuses']}",
        f"  gateway /healthz/s {w['healthz_per_second']:>9.1f}  p50 {w['healthz']['p50_ms']:.1f} "
        f"p99 {w['healthz']['p99_ms']:.1f} ms",
        f"  ratio sold-out / healthz: {w['ratio_sold_out_to_healthz']}",
    ]
    return "\n".join(lines)


def chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = report["surge"]
    fig, (timeline, latency) = plt.subplots(1, 2, figsize=(13, 5))
    series: dict[str, list[float]] = defaultdict(list)
    for at, name in s["answer_times"]:
        series[name].append(at)
    end = max((t for times in series.values() for t in times), default=1.0)
    bins = [end * i / 60 for i in range(61)]
    for name, times in sorted(series.items()):
        timeline.hist(times, bins=bins, histtype="step", label=f"{name} ({len(times)})")
    timeline.set(title="answers over time", xlabel="seconds after the release", ylabel="answers")
    timeline.legend(fontsize="small")
    rows = dict(s["latency_by_answer"])
    if s["queued_to_final"]:
        rows["202 -> final"] = s["queued_to_final"]
    names = list(rows)
    for offset, q in enumerate(("p50_ms", "p95_ms", "p99_ms")):
        latency.bar(
            [i + offset * 0.27 for i in range(len(names))],
            [rows[n][q] for n in names],
            width=0.27,
            label=q.removesuffix("_ms"),
        )
    latency.set_xticks([i + 0.27 for i in range(len(names))], names, rotation=20, fontsize="small")
    latency.set(title="latency per answer", ylabel="ms")
    latency.legend()
    w = report["steady"]
    fig.suptitle(
        f"{s['patients']} patients, {report['overbooking']['numbers']} numbers: "
        f"{s['confirmed']} confirmed, {s['server_errors_5xx']} 5xx, "
        f"overbooked {report['overbooking']['bookings_beyond_numbers']}; "
        f"sold-out/healthz {w['ratio_sold_out_to_healthz']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(report: dict[str, Any], folder: Path, stamp: str) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    data, picture = folder / f"surge-{stamp}.json", folder / f"surge-{stamp}.png"
    data.write_text(json.dumps(report, ensure_ascii=False, indent=1))
    chart(report, picture)
    return data, picture
