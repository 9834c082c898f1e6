"""The authorization matrix's hotline call: a call to A's organization ``h1`` from the
phone of A's patient, so its pop shows that patient (``call_id``)."""

from __future__ import annotations

from typing import Any

import httpx

from shared.principal import Role

A = "/v1/appointments"


async def seed_hotline(client: httpx.AsyncClient, headers: Any, ids: dict[str, str]) -> set[str]:
    """Seed and fill ``ids``; returns the call id (A's secret)."""
    revealed = await client.post(
        f"{A}/staff/patients/{ids['patient_id']}/identity",
        headers=headers(Role.ADMIN),
        params={"reason": "matrix seed"},
    )
    assert revealed.status_code == 200, revealed.text
    call_id = f"matrix-call-{ids['patient_id'][-12:]}"
    body = {
        "call_id": call_id,
        "caller_number": revealed.json()["phone"],
        "extension": "8001",
        "org_id": ids["org_id"],
    }
    told = await client.post(f"{A}/staff/calls", headers=headers(Role.SERVICE, org=None), json=body)
    assert told.status_code == 201, told.text
    assert told.json()["matches"] == 1, told.text
    ids["call_id"] = call_id
    return {call_id}
