"""A booking, a reschedule, a waitlist offer, a cancellation and a clinic cancellation each reach
the patient, through the gateway, across the appointments and notifications processes."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devstack.keys import DevSecrets
from devstack.system import System
from tests.e2e.test_booking_journey import bearer, minter
from tests.factories import make_national_id, make_phone
from tests.support.patient_codes import add_patient_by_sms

pytestmark = pytest.mark.e2e
ORG = "e2e-n"


async def deliveries(
    gw: httpx.AsyncClient, ops: dict[str, str], patient_id: str, kind: str, *, timeout: float = 40
) -> list[dict[str, Any]]:
    """What the sandbox provider delivered to a patient for a message kind (waits for one)."""
    deadline = time.monotonic() + timeout
    while True:
        response = await gw.get(
            "/v1/notifications/sandbox/deliveries",
            params={"patient_id": patient_id, "kind": kind},
            headers=ops,
        )
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.3)


async def test_appointment_changes_reach_the_patient(
    system: System, dev_secrets: DevSecrets
) -> None:
    tokens = minter(dev_secrets)
    admin = bearer(tokens.mint("his-sync", ["service"]))
    # login and link codes belong to no organization: the alliance admin reads them
    ops = bearer(tokens.mint("ops-1", ["alliance_admin"]))
    day = (datetime.now(UTC) + timedelta(hours=8)).date() + timedelta(days=3)
    accounts = {
        name: bearer(tokens.mint(f"acct-{name}", ["patient"], org_id=ORG)) for name in "abc"
    }
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=20) as gw:
        await _master_data(gw, admin)
        full, other = await _sessions(gw, admin, day)
        pid: dict[str, str] = {}
        phones: dict[str, str] = {}
        for name, headers in accounts.items():
            phones[name] = make_phone()
            person = await add_patient_by_sms(
                gw,
                headers,
                {"name": f"患者{name}", "national_id": make_national_id(), "phone": phones[name]},
                ops,
            )
            assert person.status_code == 201, person.text
            pid[name] = person.json()["id"]

        ready = asyncio.Event()
        live = asyncio.create_task(_first_streamed(system.gateway_url, accounts["a"], ready))
        await asyncio.wait_for(ready.wait(), 15)
        first = await _book(gw, accounts["a"], pid["a"], full)
        streamed = await asyncio.wait_for(live, 40)
        assert streamed["kind"] == "appointment.booked"  # live through the gateway (SSE)
        [confirmation] = await deliveries(gw, ops, pid["a"], "appointment.booked")
        assert confirmation["channel"] == "sms"
        assert confirmation["address_masked"] == f"{phones['a'][:3]}****{phones['a'][-4:]}"
        assert "张医生" in confirmation["body"]

        joined = await gw.post(
            "/v1/appointments/waitlist",
            headers=accounts["b"],
            json={"patient_id": pid["b"], "schedule_id": full},
        )
        assert joined.status_code == 201, joined.text

        moved = await gw.post(
            f"/v1/appointments/appointments/{first}/reschedule",
            headers=accounts["a"],
            json={"schedule_id": other},
        )
        assert moved.status_code == 200, moved.text
        assert await deliveries(gw, ops, pid["a"], "appointment.rescheduled")
        [offer] = await deliveries(gw, ops, pid["b"], "appointment.waitlist_offered")
        assert offer["channel"] == "sms"

        cancelled = await gw.post(
            f"/v1/appointments/appointments/{moved.json()['id']}/cancel",
            headers=accounts["a"],
            json={"reason": "出差"},
        )
        assert cancelled.status_code == 200, cancelled.text
        assert await deliveries(gw, ops, pid["a"], "appointment.cancelled")

        await _book(gw, accounts["c"], pid["c"], other)
        stopped = await gw.post(
            f"/v1/appointments/admin/schedules/{other}/cancel",
            headers=admin,
            json={"reason": "医生临时出诊任务"},
        )
        assert stopped.status_code == 200, stopped.text
        [notice] = await deliveries(gw, ops, pid["c"], "appointment.clinic_cancelled")
        assert "医生临时出诊任务" in notice["body"]

        inbox = await gw.get("/v1/notifications/inbox", headers=accounts["a"])
        assert [i["kind"] for i in inbox.json()["items"]] == [
            "appointment.cancelled",
            "appointment.rescheduled",
            "appointment.booked",
        ]


async def _first_streamed(
    base: str, headers: dict[str, str], ready: asyncio.Event
) -> dict[str, Any]:
    """The first inbox item the account's live stream (server-sent events) carries."""
    async with (
        httpx.AsyncClient(base_url=base, timeout=60) as client,
        client.stream("GET", "/v1/notifications/inbox/stream", headers=headers) as response,
    ):
        assert response.status_code == 200
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
                if event == "ready":
                    ready.set()
            elif line.startswith("data: ") and event == "message":
                item: dict[str, Any] = json.loads(line.removeprefix("data: "))
                return item
    raise AssertionError("the stream ended without an item")


async def _master_data(gw: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await gw.put(
        "/v1/appointments/admin/departments",
        headers=admin,
        json=[{"org_id": ORG, "code": "NEU", "name": "神经内科"}],
    )
    assert response.status_code == 200, response.text
    response = await gw.put(
        "/v1/appointments/admin/resources",
        headers=admin,
        json=[
            {"org_id": ORG, "code": "N1", "department_code": "NEU", "name": "张医生",
             "title": "主任医师", "clinic_type": "expert", "fee_cents": 5000},
            {"org_id": ORG, "code": "N2", "department_code": "NEU", "name": "赵医生",
             "title": "主治医师", "clinic_type": "general", "fee_cents": 2000},
        ],
    )  # fmt: skip
    assert response.status_code == 200, response.text


async def _sessions(gw: httpx.AsyncClient, admin: dict[str, str], day: Any) -> tuple[str, str]:
    ids = []
    for doctor, count in (("N1", 1), ("N2", 4)):
        published = await gw.post(
            "/v1/appointments/admin/schedules",
            headers=admin,
            json=[
                {"org_id": ORG, "resource_code": doctor, "clinic_date": day.isoformat(),
                 "session": "morning", "starts": "08:00", "ends": "11:00", "slot_count": count}
            ],
        )  # fmt: skip
        assert published.status_code == 201, published.text
        ids.append(published.json()["schedules"][0]["schedule_id"])
    return ids[0], ids[1]


async def _book(gw: httpx.AsyncClient, headers: dict[str, str], patient_id: str, sid: str) -> str:
    booked = await gw.post(
        "/v1/appointments/appointments",
        json={"patient_id": patient_id, "schedule_id": sid},
        headers=headers,
    )
    assert booked.status_code == 201, booked.text
    return str(booked.json()["id"])
