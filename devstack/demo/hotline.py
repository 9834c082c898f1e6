"""Demo data: the hotline (96165). The agent books for two callers on the phone, and one
caller cancels a second booking, so their patient pages show upcoming and past visits."""

from __future__ import annotations

import uuid

import httpx
import structlog

from devstack.demo.base import Demo, bearer, ok, staff_token
from devstack.keys import DevSecrets

log = structlog.get_logger(__name__)
REASON = "演示数据：患者来电预约"


async def _book(
    gw: httpx.AsyncClient, agent: dict[str, str], patient_id: str, schedule: str
) -> str:
    answer = await gw.post(
        "/v1/appointments/appointments",
        headers={**agent, "Idempotency-Key": str(uuid.uuid4())},
        params={"reason": REASON},
        json={"patient_id": patient_id, "schedule_id": schedule, "channel": "hotline"},
    )
    return str(ok(answer, 201)["id"])


async def seed_hotline(gw: httpx.AsyncClient, secrets: DevSecrets, demo: Demo) -> None:
    """Bookings made on the phone: patients 0 and 1 booked, patient 0's second one cancelled."""
    agent = bearer(await staff_token(gw, demo.usernames["agent"]))
    first = demo.patients[0]["id"]
    second = demo.patients[1]["id"]
    booked = [
        await _book(gw, agent, first, demo.schedules[0]),  # D1, tomorrow
        await _book(gw, agent, second, demo.schedules[4]),  # D2, the day after
    ]
    dropped = await _book(gw, agent, first, demo.schedules[7])  # D3, the day after
    ok(
        await gw.post(
            f"/v1/appointments/appointments/{dropped}/cancel",
            headers=agent,
            params={"reason": REASON},
            json={"reason": "患者来电：已在社区医院就诊"},
        )
    )
    demo.extra["hotline"] = {"appointments": booked, "cancelled": [dropped]}
    log.info("demo.hotline.seeded", bookings=len(booked), cancelled=1)
