"""The crowd at release time: every patient books the same session at the same instant,
through the gateway, from a loopback address of their own, as a browser would.

Each patient keeps at it the way the mini-program does: a 429, a 502/503/504 or a 409
``idempotency_in_progress`` is retried after its ``Retry-After`` (else a short back-off),
as is a broken connection, with the same ``Idempotency-Key`` (a retry returns the first
result); any other 5xx is final; a 202 ``queued`` answer is followed by
polling its ticket (``Location`` or the body's ``ticket.poll_url``) until it is final.
A patient who has neither a booking nor a sold-out answer by the deadline is left without a
definitive answer.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from benchmarks.surge.seed import BROWSER_UA, Patient

MAX_ATTEMPTS = 6
RETRY_AFTER_CAP = 10.0  # seconds: a patient waits at most this long between two attempts
DEFINITIVE = {"booked", "sold_out"}
FINAL = {"booked", "sold_out", "expired", "failed"}  # a ticket's end; "queued", "serving" wait
# our first attempt is still being worked on (the gateway timed out waiting for it): the
# app asks again with the same Idempotency-Key and gets its result
RETRYABLE_CODES = {"idempotency_in_progress"}


@dataclass
class Answer:
    """One answer to a booking POST (``status`` 0: no answer, the connection failed)."""

    status: int
    code: str
    at: float  # seconds since the release
    latency: float


@dataclass
class Gate:
    """The release: every client waits at it, built and ready, then all go at once."""

    expected: int
    arrived: int = 0
    release: float = 0.0
    all_in: asyncio.Event = field(default_factory=asyncio.Event)
    go: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait(self) -> float:
        self.arrived += 1
        if self.arrived == self.expected:
            self.all_in.set()
        await self.go.wait()
        return self.release

    def open(self) -> None:
        self.release = time.perf_counter()
        self.go.set()


@dataclass
class Result:
    patient: Patient
    answers: list[Answer] = field(default_factory=list)
    outcome: str = "none"  # booked, sold_out, <other 4xx code>, expired, failed, gave_up, ...
    done_at: float = 0.0  # seconds since the release, when the outcome was known
    queued_wait: float | None = None  # 202: from the answer to the ticket's final status
    polls: int = 0


async def _poll(
    client: httpx.AsyncClient, url: str, result: Result, hint: float, release: float, end: float
) -> None:
    queued_at = time.perf_counter()
    while time.perf_counter() < end:
        await asyncio.sleep(min(max(hint, 0.5), 2.0))
        try:
            answer = await client.get(url)
        except httpx.HTTPError:
            continue
        result.polls += 1
        if answer.status_code != 200:
            continue
        status = str(answer.json().get("status", ""))
        if status in FINAL:
            result.outcome = status
            result.done_at = time.perf_counter() - release
            result.queued_wait = time.perf_counter() - queued_at
            return
    result.outcome = "still_queued"


def _code(answer: httpx.Response) -> str:
    if answer.headers.get("content-type", "").endswith("json"):
        try:
            body = answer.json()
        except ValueError:
            return ""
        if isinstance(body, dict):
            return str(body.get("code", ""))
    return ""


async def book(
    patient: Patient,
    gateway: str,
    gate: Gate,
    tls: ssl.SSLContext,
    deadline: float,
) -> Result:
    result = Result(patient)
    transport = httpx.AsyncHTTPTransport(local_address=patient.address, retries=0, verify=tls)
    headers = {
        "authorization": f"Bearer {patient.token}",
        "user-agent": BROWSER_UA,
        "idempotency-key": f"surge-{patient.patient_id}",
    }
    body = {"patient_id": patient.patient_id, "schedule_id": patient.schedule_id}
    async with httpx.AsyncClient(
        transport=transport, base_url=gateway, headers=headers, timeout=60
    ) as client:
        release = await gate.wait()
        end = release + deadline
        for attempt in range(MAX_ATTEMPTS):
            if time.perf_counter() >= end:
                break
            sent = time.perf_counter()
            try:
                answer = await client.post("/v1/appointments/appointments", json=body)
            except httpx.HTTPError as exc:  # ConnectError, ReadError, ReadTimeout...
                now = time.perf_counter()
                result.answers.append(Answer(0, type(exc).__name__, now - release, now - sent))
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            now = time.perf_counter()
            code = _code(answer)
            result.answers.append(Answer(answer.status_code, code, now - release, now - sent))
            if answer.status_code == 201:
                result.outcome, result.done_at = "booked", now - release
                return result
            if answer.status_code == 202:
                payload: dict[str, Any] = answer.json()
                ticket = payload.get("ticket") or {}
                url = answer.headers.get("location") or ticket.get("poll_url")
                if not url:
                    result.outcome = "queued_without_ticket"
                    return result
                hint = float(ticket.get("estimated_wait_seconds") or 1.0)
                await _poll(client, str(url), result, hint, release, end)
                return result
            if answer.status_code in (429, 503, 502, 504) or code in RETRYABLE_CODES:
                wait = float(answer.headers.get("retry-after") or 0.5 * (attempt + 1))
                await asyncio.sleep(min(wait, RETRY_AFTER_CAP))
                continue
            # a 409 slot_sold_out, or another refusal the patient cannot retry away
            refusal = code or str(answer.status_code)
            result.outcome = "sold_out" if code == "slot_sold_out" else refusal
            result.done_at = now - release
            return result
        result.outcome = "gave_up"
        return result


async def surge(
    patients: list[Patient], gateway: str, *, deadline: float = 120.0
) -> tuple[list[Result], float]:
    """Every patient books at once; the results and the wall time of the whole surge."""
    tls = ssl.create_default_context()  # one context for all clients (none is used: http)
    gate = Gate(expected=len(patients))
    tasks = [asyncio.create_task(book(p, gateway, gate, tls, deadline)) for p in patients]
    await gate.all_in.wait()  # every client built and waiting
    gate.open()
    results = await asyncio.gather(*tasks)
    return list(results), time.perf_counter() - gate.release
