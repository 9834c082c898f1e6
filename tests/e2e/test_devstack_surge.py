"""The surge benchmark's patients against a stand-in gateway: each books from their own
loopback address, follows a 202 ticket to its final status, waits out a 429 and retries a
503 with the same Idempotency-Key; and what they learn is what the report counts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from benchmarks.surge.crowd import surge
from benchmarks.surge.seed import Patient, source_address
from devstack.processes import free_port

pytestmark = pytest.mark.e2e


def stand_in() -> tuple[FastAPI, dict[str, Any]]:
    """Patient 0: 202, then queued, serving, booked; 1: 429 then 201; 2: 503 then 409 sold
    out; 3: 202 then expired."""
    seen: dict[str, Any] = {"addresses": set(), "keys": {}, "polls": {}}
    app = FastAPI()
    attempts: dict[str, int] = {}

    @app.post("/v1/appointments/appointments")
    async def book(request: Request) -> JSONResponse:
        body = await request.json()
        patient = body["patient_id"]
        assert request.client is not None
        seen["addresses"].add(request.client.host)
        seen["keys"].setdefault(patient, set()).add(request.headers["idempotency-key"])
        assert "Mozilla/5.0" in request.headers["user-agent"]
        attempts[patient] = attempts.get(patient, 0) + 1
        first = attempts[patient] == 1
        if patient in ("p0", "p3"):
            ticket: dict[str, Any] = {
                "id": f"t-{patient}",
                "position": 3,
                "estimated_wait_seconds": 0.1,
                "poll_url": f"/v1/appointments/booking-tickets/t-{patient}",
                "events_url": f"/v1/appointments/booking-tickets/t-{patient}/events",
            }
            return JSONResponse(
                {"ticket": ticket}, status_code=202, headers={"location": ticket["poll_url"]}
            )
        if patient == "p1" and first:
            return JSONResponse({"code": "rate_limited"}, 429, headers={"retry-after": "1"})
        if patient == "p2" and first:
            return JSONResponse({"code": "service_unavailable"}, 503)
        if patient == "p2":
            return JSONResponse({"code": "slot_sold_out"}, 409)
        return JSONResponse({"id": "ap-1", "number": 1}, 201)

    @app.get("/v1/appointments/booking-tickets/{ticket}")
    async def poll(ticket: str) -> dict[str, Any]:
        seen["polls"][ticket] = polls = seen["polls"].get(ticket, 0) + 1
        if ticket == "t-p3":
            return {"status": "expired", "appointment": None, "problem": {"code": "expired"}}
        if polls < 3:  # waiting: queued, then serving (its booking under way)
            status = "queued" if polls == 1 else "serving"
            return {"status": status, "appointment": None, "problem": None}
        return {"status": "booked", "appointment": {"id": "ap-0"}, "problem": None}

    return app, seen


@contextlib.asynccontextmanager
async def serving(app: FastAPI, port: int) -> AsyncIterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110  (uvicorn sets a flag, not an event)
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        await task


async def test_patients_follow_tickets_wait_out_429_and_retry_503() -> None:
    app, seen = stand_in()
    port = free_port()
    patients = [Patient(n, f"pa-{n}", "token", source_address(n), f"p{n}", "s1") for n in range(4)]
    async with serving(app, port):
        results, wall = await surge(patients, f"http://127.0.0.1:{port}", deadline=20)
    outcomes = {r.patient.patient_id: r.outcome for r in results}
    assert outcomes == {"p0": "booked", "p1": "booked", "p2": "sold_out", "p3": "expired"}
    assert seen["addresses"] == {source_address(n) for n in range(4)}
    assert all(len(keys) == 1 for keys in seen["keys"].values())  # retries keep the key
    queued = results[0]
    assert queued.queued_wait is not None
    assert queued.polls == 3
    assert [a.status for a in results[1].answers] == [429, 201]
    assert [a.status for a in results[2].answers] == [503, 409]
    assert wall < 15
