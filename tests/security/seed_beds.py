"""The authorization matrix's beds: a ward of A's organization ``h1`` with two beds, an
admission notice for A's patient and a bed offered to them (bed ``1``); bed ``2`` free."""

from __future__ import annotations

from typing import Any

import httpx

from shared.principal import Role

A = "/v1/appointments"
ORG = "h1"
COME_AT = "2030-01-07T08:00:00+08:00"


def notice(patient_id: str, episode: str) -> dict[str, Any]:
    return {
        "patient_id": patient_id,
        "episode_id": episode,
        "department_code": "CARD",
        "diagnosis": {"code": "I20.0", "text": "心绞痛"},
        "urgency": "routine",
        "expected_days": 5,
    }


async def seed_beds(client: httpx.AsyncClient, headers: Any, ids: dict[str, str]) -> set[str]:
    """Seed and fill ``ids``; returns the notice and offer ids (A's secrets)."""
    service = headers(Role.SERVICE, org=None)
    ward = {"org_id": ORG, "code": "MW", "department_code": "CARD", "name": "心内一病区"}
    saved = await client.put(f"{A}/admin/wards", json=[{**ward, "floor": 3}], headers=service)
    assert saved.status_code == 200, saved.text
    beds = [{"org_id": ORG, "ward_code": "MW", "code": code, "room": "301"} for code in ("1", "2")]
    saved = await client.put(f"{A}/admin/beds", json=beds, headers=service)
    assert saved.status_code == 200, saved.text
    offered_bed, free_bed = saved.json()["ids"]
    issued = await client.post(
        f"{A}/admission-notices",
        json=notice(ids["patient_id"], "matrix-episode"),
        headers=headers(Role.DOCTOR),
    )
    assert issued.status_code == 201, issued.text
    notice_id = issued.json()["id"]
    body = {"bed_id": offered_bed, "come_at": COME_AT, "what_to_bring": "身份证"}
    offered = await client.post(
        f"{A}/admission-notices/{notice_id}/assign", json=body, headers=headers(Role.NURSE)
    )
    assert offered.status_code == 201, offered.text
    ids.update(notice_id=notice_id, bed_offer_id=offered.json()["id"], bed_id=free_bed)
    return {notice_id, offered.json()["id"]}
