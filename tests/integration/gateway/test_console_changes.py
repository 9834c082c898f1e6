"""The console's live changes: events published on the real embedded Kafka reach the
streams of the organizations they concern, and no other."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.gateway.console_changes import ConsoleChanges
from shared.events import Envelope
from shared.kafka import topic_name
from tests.integration.gateway.conftest import Gateway, bearer

pytestmark = pytest.mark.integration

URL = "/v1/console/changes"
FAST = {"console_changes_heartbeat_seconds": 0.3, "console_changes_coalesce_seconds": 1.0}


def staff(gateway: Gateway, role: str, org: str | None) -> dict[str, str]:
    return bearer(gateway.minter.mint(f"{role}-{org}", [role], org_id=org))


class Watch:
    """One open stream: its ``changed`` messages, read in the background."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.changed: list[dict[str, Any]] = []
        self.taken = 0
        self.heartbeats = 0
        self.connected = asyncio.Event()
        self.arrived = asyncio.Event()
        self.beat = asyncio.Event()

    async def read(self) -> None:
        event = ""
        async for line in self.response.aiter_lines():
            if line.startswith(": heartbeat"):
                self.heartbeats += 1
                self.beat.set()
            elif line.startswith("event: "):
                event = line.removeprefix("event: ")
                if event == "ready":
                    self.connected.set()
            elif line.startswith("data: ") and event == "changed":
                self.changed.append(json.loads(line.removeprefix("data: ")))
                self.arrived.set()

    async def next_change(self, timeout: float = 15.0) -> dict[str, Any]:
        """The next message not taken yet (waiting for it if need be)."""
        while len(self.changed) <= self.taken:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), timeout)
        self.taken += 1
        return self.changed[self.taken - 1]


@asynccontextmanager
async def watching(gateway: Gateway, headers: dict[str, str], org: str) -> AsyncIterator[Watch]:
    async with gateway.client.stream("GET", URL, params={"org_id": org}, headers=headers) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        watch = Watch(r)
        reader = asyncio.create_task(watch.read())
        try:
            await asyncio.wait_for(watch.connected.wait(), 10)
            yield watch
        finally:
            reader.cancel()


async def ready(gateway: Gateway) -> None:
    changes: ConsoleChanges = gateway.app.state.console_changes
    await asyncio.wait_for(changes.ready.wait(), 30)


def event(kind: str, source: str, data: dict[str, Any]) -> bytes:
    return Envelope(
        type=f"careloop.{kind}",
        source=source,
        subject="pt-console",
        dataschema=f"careloop.{kind}/1",
        data=data,
    ).to_bytes()


@pytest.mark.parametrize("gateway", [FAST], indirect=True)
async def test_an_event_reaches_its_organizations_streams_only(gateway: Gateway) -> None:
    await ready(gateway)
    settings = gateway.settings
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        async with (
            watching(gateway, staff(gateway, "admin", "h1"), "h1") as h1,
            watching(gateway, staff(gateway, "alliance_admin", None), "h2") as h2,
        ):
            booked = {"appointment_id": "ap-1", "org_id": "h1", "channel": "hotline"}
            await producer.send_and_wait(
                topic_name(settings, "appointments"),
                event("appointment.booked", "appointments", booked),
                key=b"pt-console",
            )
            assert await h1.next_change() == {"domain": "appointments", "org_id": "h1"}

            # a referral concerns both organizations: sent by h2, received by h1
            referral = {"referral_id": "rf-1", "sending_org_id": "h2", "receiving_org_id": "h1"}
            await producer.send_and_wait(
                topic_name(settings, "referrals"),
                event("referral.routed", "referrals", referral),
                key=b"pt-console",
            )
            assert await h2.next_change() == {"domain": "referrals", "org_id": "h2"}
            assert await h1.next_change() == {"domain": "referrals", "org_id": "h1"}
            # h2's stream heard nothing of h1's booking, and beats while idle
            assert h2.changed == [{"domain": "referrals", "org_id": "h2"}]
            h2.beat.clear()
            await asyncio.wait_for(h2.beat.wait(), 5)  # the next heartbeat (every 0.3 s)

            # a burst of a domain's events is one message per second, not one per event
            before = len(h1.changed)
            for n in range(6):
                plan = {"plan_id": f"pl-{n}", "org_id": "h1"}
                await producer.send_and_wait(
                    topic_name(settings, "followup"),
                    event("followup.plan.created", "followup", plan),
                    key=b"pt-console",
                )
            assert await h1.next_change() == {"domain": "followup", "org_id": "h1"}
            await asyncio.sleep(0.5)  # within the coalescing second: nothing more
            assert len(h1.changed) == before + 1
    finally:
        await producer.stop()


async def test_only_staff_watch_the_organizations_they_may_see(gateway: Gateway) -> None:
    calls = [
        ({}, {"org_id": "h1"}, 401, "token_missing"),
        (staff(gateway, "patient", None), {"org_id": "h1"}, 403, "forbidden_role"),
        (staff(gateway, "admin", "h2"), {"org_id": "h1"}, 403, "forbidden_org"),
        (staff(gateway, "agent", None), {}, 403, "forbidden_org"),
        (staff(gateway, "alliance_admin", None), {}, 422, "org_id_required"),
    ]
    for headers, params, status, code in calls:
        answer = await gateway.client.get(URL, params=params, headers=headers)
        assert answer.status_code == status, (params, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["code"] == code
