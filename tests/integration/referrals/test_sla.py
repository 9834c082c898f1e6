"""The acceptance deadline with two replicas running: each offer is escalated once to its
receiver's coordinator, then moved on to the next candidate, and the case ends rejected
when every candidate let it lapse. Nothing fires twice across the replicas."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from services.referrals.settings import ReferralsSettings
from shared.auth import TokenMinter
from shared.principal import Role
from shared.settings import ServiceSettings
from tests.integration.referrals.cases_support import CASES, known_patient, referral_body, staff
from tests.integration.referrals.conftest import running_referrals, seed_directory
from tests.support.kafka import read_topic, wait_until

pytestmark = pytest.mark.integration


async def test_an_unanswered_referral_escalates_once_then_moves_on_with_two_replicas(
    make_settings: Callable[..., ServiceSettings], minter: TokenMinter
) -> None:
    # 1.2 s to accept, then 1.8 s more before the case moves on; an emergency's clock runs
    # at once, whatever the receivers' intake hours (tests/unit/referrals/test_sla_rules.py)
    settings = make_settings(
        "referrals",
        ReferralsSettings,
        sla_minutes={"emergency": 0.02, "urgent": 0.02, "routine": 0.02},
        reroute_after_escalation_minutes=0.03,
    )
    async with (
        running_referrals(settings, minter) as first,
        running_referrals(settings, minter) as second,
    ):
        await seed_directory(first)
        patient = await known_patient(first)
        sent = await second.client.post(
            CASES,
            json=referral_body(patient, urgency="emergency"),
            headers=staff(second, "town1", Role.DOCTOR),
        )
        assert sent.status_code == 201, sent.text
        case_id = sent.json()["referral_id"]
        url = f"{CASES}/{case_id}"

        async def lapsed_everywhere() -> bool:
            case = (await first.client.get(url, headers=first.service)).json()
            return bool(case["status"] == "rejected")

        await wait_until(lapsed_everywhere, timeout=60, what="both counties letting it lapse")
        case = (await first.client.get(url, headers=first.service)).json()
    actions = [h["action"] for h in case["history"]]
    assert actions == [
        "create",
        "route",
        "sla_escalated",
        "sla_timeout",
        "reroute",
        "sla_escalated",
        "sla_timeout",
    ], actions
    assert sorted(case["declined_org_ids"]) == ["county1", "county2"]
    records = await read_topic(
        settings.kafka_bootstrap, f"{settings.kafka_topic_prefix}.referrals", expected=7
    )
    types = [json.loads(r.value)["type"] for r in records]
    assert types.count("careloop.referral.escalated") == 2  # once per offer, not per replica
    assert types.count("careloop.referral.routed") == 2
    assert types.count("careloop.referral.rejected") == 2
