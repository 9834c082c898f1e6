"""The authorization matrix's referrals: a small directory around A's organization ``h1``
and two referrals of A's patient, one sent by ``h1`` and one sent to ``h1``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from shared.principal import Role
from tests.support.kafka import wait_until

R = "/v1/referrals"
PROV, TOWN = "matrix-prov", "matrix-town"


def _org(org_id: str, level: int, kind: str) -> dict[str, Any]:
    return {
        "org_id": org_id,
        "name": f"{org_id} 医院",
        "level": level,
        "kind": kind,
        "region": "330327",
        "alliance_ids": ["matrix-alliance"],
        "departments": [
            {"department_id": f"{org_id}.CARD", "name": "心内科", "specialties": ["cardiology"]}
        ],
        "contacts": [],
    }


def _referral(patient_id: str, sender: str, episode: str) -> dict[str, Any]:
    return {
        "patient_id": patient_id,
        "episode_id": episode,
        "direction": "upward",
        "urgency": "routine",
        "sending_org_id": sender,
        "diagnosis": {"code": "I20.0", "text": "心绞痛"},
        "reason": "matrix",
        "specialty": "cardiology",
        "consent": {
            "given": True,
            "method": "signature",
            "recorded_at": datetime.now(UTC).isoformat(),
        },
    }


async def seed_referrals(
    client: httpx.AsyncClient, headers: Any, patient_id: str, ids: dict[str, str]
) -> set[str]:
    """Seed and fill ``ids``; returns the referral ids (A's secrets)."""
    service = headers(Role.SERVICE, org=None)
    orgs = [
        _org("h1", 2, "county_hospital"),
        _org(PROV, 3, "tertiary"),
        _org(TOWN, 1, "township_center"),
    ]
    saved = await client.put(f"{R}/admin/organizations", json=orgs, headers=service)
    assert saved.status_code == 200, saved.text
    rels = [
        {"from_org_id": "h1", "to_org_id": PROV, "direction": "upward"},
        {"from_org_id": TOWN, "to_org_id": "h1", "direction": "upward"},
    ]
    linked = await client.put(f"{R}/admin/relationships", json=rels, headers=service)
    assert linked.status_code == 200, linked.text

    async def known() -> bool:  # A's patient reached referrals through appointments' event
        body = _referral(patient_id, "h1", "matrix-probe")
        probe = await client.post(f"{R}/cases", json={**body, "submit": False}, headers=service)
        return probe.status_code == 201

    await wait_until(known, timeout=60, what="referrals learning A's patient")
    made: dict[str, str] = {}
    for name, sender in (("referral_id", "h1"), ("received_referral_id", TOWN)):
        sent = await client.post(
            f"{R}/cases", json=_referral(patient_id, sender, f"matrix-{name}"), headers=service
        )
        assert sent.status_code == 201, sent.text
        made[name] = sent.json()["referral_id"]
    assert (await client.get(f"{R}/cases/{made['received_referral_id']}", headers=service)).json()[
        "receiving_org_id"
    ] == "h1"
    ids.update(made, from_org_id="h1", to_org_id="matrix-none", direction="upward")
    return set(made.values())
