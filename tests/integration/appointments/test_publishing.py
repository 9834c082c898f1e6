"""Publishing sessions: past sessions are refused, referral pools are rounded per session."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.appointments.conftest import ORG, Api, clinic_day

pytestmark = pytest.mark.integration

SCHEDULES = "/v1/appointments/admin/schedules"


def session(doctor: str, days_ahead: int, part: str = "morning", slots: int = 20) -> dict[str, Any]:
    starts, ends = ("08:00", "12:00") if part == "morning" else ("14:00", "17:00")
    return {
        "org_id": ORG,
        "resource_code": doctor,
        "clinic_date": clinic_day(days_ahead).isoformat(),
        "session": part,
        "starts": starts,
        "ends": ends,
        "slot_count": slots,
    }


async def test_a_past_session_refuses_the_whole_batch(appointments_api: Api) -> None:
    api = appointments_api
    future = session("D1", 3)
    past = session("D2", -1)
    refused = await api.client.post(SCHEDULES, json=[future, past], headers=api.admin)
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["code"] == "session_in_past"
    assert [e["field"] for e in body["errors"]] == ["body.1.ends"]
    listed = await api.client.get(
        "/v1/appointments/schedules",
        params={
            "org_id": ORG,
            "date_from": clinic_day(-1).isoformat(),
            "date_to": clinic_day(4).isoformat(),
        },
        headers=api.admin,
    )
    assert listed.json() == []  # nothing of the batch was written

    published = await api.client.post(SCHEDULES, json=[future], headers=api.admin)
    assert published.status_code == 201, published.text


async def test_identical_sessions_in_one_batch_get_identical_referral_pools(
    appointments_api: Api,
) -> None:
    api = appointments_api
    policy_url = f"/v1/appointments/admin/policies/{ORG}"
    policy = (await api.client.get(policy_url, headers=api.admin)).json()
    policy["pool_shares"]["referral"] = 0.33  # 20 x 0.33 = 6.6 per session, 13.2 per batch
    saved = await api.client.put(policy_url, json=policy, headers=api.admin)
    assert saved.status_code == 200, saved.text
    batch = [session("D1", 3), session("D1", 3, "afternoon")]
    published = await api.client.post(SCHEDULES, json=batch, headers=api.admin)
    assert published.status_code == 201, published.text
    pools = [s["pools"] for s in published.json()["schedules"]]
    assert pools[0] == pools[1]
    assert pools[0]["referral"] == 7  # round half up of 6.6, per session


async def test_a_refused_change_in_a_batch_writes_nothing_of_it(appointments_api: Api) -> None:
    api = appointments_api
    assert (
        await api.client.post(SCHEDULES, json=[session("D2", 2)], headers=api.admin)
    ).status_code == 201
    shrunk = session("D2", 2, slots=10)
    refused = await api.client.post(SCHEDULES, json=[session("D1", 3), shrunk], headers=api.admin)
    assert (refused.status_code, refused.json()["code"]) == (409, "schedule_shrink_refused")
    listed = await api.client.get(
        "/v1/appointments/schedules",
        params={"org_id": ORG, "resource_id": f"{ORG}.D1"},
        headers=api.admin,
    )
    assert listed.json() == []  # the first item was not published either

    # re-posting the published session unchanged is still a no-op
    assert (await api.client.post(SCHEDULES, json=[session("D2", 2)], headers=api.admin)).json()[
        "schedules"
    ][0]["status"] == "unchanged"
