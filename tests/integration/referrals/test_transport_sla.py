"""A transport's deadlines with two replicas on one database: a missed response and a
missed pickup are each escalated to the dispatcher exactly once, not once per replica."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from services.referrals.settings import ReferralsSettings
from shared.auth import TokenMinter
from shared.principal import Role
from shared.settings import ServiceSettings
from tests.integration.referrals.cases_support import staff
from tests.integration.referrals.conftest import running_referrals
from tests.integration.referrals.transport_support import (
    escort_body,
    on_duty,
    patient_at,
    porter,
    porter_headers,
    read,
    request,
    roster,
    step,
)
from tests.support.kafka import read_topic, wait_until

pytestmark = pytest.mark.integration
COUNTY = "county1"
SECONDS = 1 / 60


async def test_a_missed_pickup_escalates_exactly_once_with_two_replicas(
    make_settings: Callable[..., ServiceSettings], minter: TokenMinter
) -> None:
    fast = {"response": 0.6 * SECONDS, "pickup": 1.5 * SECONDS}
    settings = make_settings(
        "referrals",
        ReferralsSettings,
        transport_minutes={"emergency": fast, "urgent": fast, "routine": fast},
    )
    async with (
        running_referrals(settings, minter) as first,
        running_referrals(settings, minter) as second,
    ):
        await roster(first, COUNTY, porter("porter-a", COUNTY, ["inpatient-5"]))
        await on_duty(first, COUNTY, "porter-a")
        patient = await patient_at(first, COUNTY)
        made = await request(second, COUNTY, escort_body(patient))
        transport_id = made["transport_id"]
        assert made["state"] == "assigned"

        async def state() -> dict[str, Any]:
            return await read(first, transport_id)

        async def response_missed() -> bool:
            return bool((await state())["escalated"].get("response"))

        await wait_until(response_missed, timeout=30, what="the response deadline escalated")
        # the porter accepts late, but never picks the patient up
        accepted = await step(
            second, transport_id, "accept", porter_headers(second, COUNTY, "porter-a")
        )
        assert accepted.status_code == 200, accepted.text

        async def pickup_missed() -> bool:
            return bool((await state())["escalated"].get("pickup"))

        await wait_until(pickup_missed, timeout=30, what="the pickup deadline escalated")
        await asyncio.sleep(2.0)  # time enough for a second replica to fire it again
        current = await state()
        desk = await first.client.get(
            "/v1/referrals/notices", headers=staff(first, COUNTY, Role.COORDINATOR)
        )
        told = [n for n in desk.json()["items"] if n.get("transport_id") == transport_id]
        assert sorted(n["kind"] for n in told) == [
            "transport_pickup_missed",
            "transport_response_missed",
        ]
    actions = [h["action"] for h in current["history"]]
    assert actions.count("sla_response_missed") == 1
    assert actions.count("sla_pickup_missed") == 1
    assert current["state"] == "en_route"
    records = await read_topic(
        settings.kafka_bootstrap, f"{settings.kafka_topic_prefix}.referrals", expected=6
    )
    escalations = [
        json.loads(r.value)["data"]
        for r in records
        if json.loads(r.value)["type"] == "careloop.transport.escalated"
    ]
    assert sorted(e["deadline_kind"] for e in escalations) == ["pickup", "response"]
