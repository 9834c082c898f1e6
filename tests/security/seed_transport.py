"""The authorization matrix's transports: ``matrix-nurse`` on ``h1``'s porters' roster and
on duty, and a wheelchair escort of A's patient at ``h1`` dispatched to them."""

from __future__ import annotations

from typing import Any

import httpx

from shared.principal import Role
from tests.security.matrix_transport import PORTER

R = "/v1/referrals"


async def seed_transport(
    client: httpx.AsyncClient, headers: Any, patient_id: str, ids: dict[str, str]
) -> set[str]:
    """Seed and fill ``ids["transport_id"]``; returns the transport's id (A's secret)."""
    service = headers(Role.SERVICE, org=None)
    roster = [
        {
            "porter_id": PORTER,
            "org_id": ids["org_id"],
            "name": "矩阵陪检员",
            "zones": ["matrix-zone"],
            "skills": ["stretcher", "oxygen"],
        }
    ]
    saved = await client.put(f"{R}/admin/porters", json=roster, headers=service)
    assert saved.status_code == 200, saved.text
    duty = await client.put(
        f"{R}/porters/me/duty",
        json={"on_duty": True, "zone": "matrix-zone"},
        headers=headers(Role.NURSE),
    )
    assert duty.status_code == 200, duty.text
    body = {
        "patient_id": patient_id,
        "org_id": ids["org_id"],
        "from": {"ward": "5W", "bed": "12", "zone": "matrix-zone"},
        "to": {"room": "CT-2"},
        "mode": "wheelchair",
        "priority": "routine",
    }
    made = await client.post(f"{R}/transports", json=body, headers=service)
    assert made.status_code == 201, made.text
    assert made.json()["porter_id"] == PORTER, made.text
    ids["transport_id"] = made.json()["transport_id"]
    return {ids["transport_id"]}
