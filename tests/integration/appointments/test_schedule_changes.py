"""HIS re-publishes schedules in bulk: identical is a no-op, more slots add numbers."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.integration.appointments.conftest import ORG, Api, clinic_day

pytestmark = pytest.mark.integration


def session(slot_count: int, starts: str = "08:00") -> dict[str, Any]:
    return {
        "org_id": ORG,
        "resource_code": "D2",
        "clinic_date": clinic_day(2).isoformat(),
        "session": "morning",
        "starts": starts,
        "ends": "12:00",
        "slot_count": slot_count,
    }


async def publish(api: Api, *items: dict[str, Any]) -> Any:
    return await api.client.post(
        "/v1/appointments/admin/schedules", json=list(items), headers=api.admin
    )


async def test_republishing_grows_capacity_and_new_numbers_are_bookable(
    appointments_api: Api,
) -> None:
    api = appointments_api
    first = await publish(api, session(4))
    assert first.status_code == 201, first.text
    sid = first.json()["schedules"][0]["schedule_id"]
    again = await publish(api, session(4))
    assert again.json()["schedules"][0]["status"] == "unchanged"

    # book out the public pool, then HIS adds four numbers to the session
    public = [
        s
        for s in (
            await api.client.get(f"/v1/appointments/schedules/{sid}/slots", headers=api.admin)
        ).json()
        if s["pool"] == "public"
    ]
    for n, _slot in enumerate(public):
        patient = await api.add_patient(f"grow-{n}")
        booked = await api.client.post(
            "/v1/appointments/appointments",
            headers=api.token(f"grow-{n}"),
            json={"patient_id": patient["id"], "schedule_id": sid},
        )
        assert booked.status_code == 201, booked.text
    late = await api.add_patient("grow-late")
    body = {"patient_id": late["id"], "schedule_id": sid}
    full = await api.client.post(
        "/v1/appointments/appointments", headers=api.token("grow-late"), json=body
    )
    assert full.json()["code"] == "slot_sold_out"

    grown = await publish(api, session(8))
    assert grown.status_code == 201, grown.text
    assert grown.json()["schedules"][0]["status"] == "grown"
    assert grown.json()["schedules"][0]["added"] == 4
    slots = (
        await api.client.get(f"/v1/appointments/schedules/{sid}/slots", headers=api.admin)
    ).json()
    assert [s["number"] for s in slots] == list(range(1, 9))
    assert Counter(s["pool"] for s in slots[4:]) == {"public": 4}
    booked = await api.client.post(
        "/v1/appointments/appointments", headers=api.token("grow-late"), json=body
    )
    assert booked.status_code == 201, booked.text
    assert booked.json()["number"] > 4


async def test_shrinking_or_moving_a_published_session_is_refused(appointments_api: Api) -> None:
    api = appointments_api
    assert (await publish(api, session(6))).status_code == 201
    shrink = await publish(api, session(3))
    assert shrink.status_code == 409
    assert shrink.json()["code"] == "schedule_shrink_refused"
    moved = await publish(api, session(6, starts="09:00"))
    assert moved.status_code == 409
    assert moved.json()["code"] == "schedule_times_changed"
