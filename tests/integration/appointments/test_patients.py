"""Real-name patients: one "self" per account, national IDs refused the same way, removal
refused while the account's bookings are active."""

from __future__ import annotations

import pytest

from shared.principal import Role
from tests.factories import make_national_id, make_phone
from tests.integration.appointments.conftest import Api
from tests.support.patient_codes import add_patient

pytestmark = pytest.mark.integration

PATIENTS = "/v1/appointments/patients"


def bad_ids() -> list[str]:
    valid = make_national_id()
    wrong_check = valid[:17] + ("0" if valid[17] != "0" else "1")
    return [wrong_check, valid[:17], valid + "1", "", "not-an-id-at-all!!", "110101209913320011"]


async def test_an_invalid_national_id_is_national_id_invalid_everywhere(
    appointments_api: Api,
) -> None:
    api = appointments_api
    agent = api.token("agent-1", Role.AGENT)
    for bad in bad_ids():
        added = await api.client.post(
            PATIENTS,
            headers=api.token("acct-1"),
            json={"name": "张三", "national_id": bad, "phone": make_phone()},
        )
        looked_up = await api.client.post(
            "/v1/appointments/staff/patients/lookup",
            headers={**agent, "X-Access-Reason": "hotline"},
            params={"reason": "hotline"},
            json={"national_id": bad, "reason": "hotline"},
        )
        for response in (added, looked_up):
            assert response.status_code == 422, (bad, response.text)
            assert response.json()["code"] == "national_id_invalid", response.text
            assert response.json()["detail_zh"]
            if bad:
                assert bad not in response.text  # never echoed
    listed = await api.client.get(PATIENTS, headers=api.token("acct-1"))
    assert listed.json() == []


async def test_one_self_per_account(appointments_api: Api) -> None:
    api = appointments_api
    me = api.token("acct-1")

    async def add(relation: str | None, national_id: str | None = None) -> tuple[int, dict]:
        body = {
            "name": "张三",
            "national_id": national_id or make_national_id(),
            "phone": make_phone(),
        }
        if relation is not None:
            body["relation"] = relation
        response = await add_patient(api.client, api.settings, me, body)
        return response.status_code, response.json()

    first_id = make_national_id()
    assert (await add("self", first_id))[0] == 201
    status, body = await add("self")
    assert (status, body["code"]) == (409, "self_already_registered")
    assert body["detail_zh"]
    status, body = await add(None)  # no relation given: not a second self
    assert (status, body["relation"]) == (201, "other")
    assert (await add("self", first_id))[0] == 201  # the same person again is not a second self
    mine = (await api.client.get(PATIENTS, headers=me)).json()
    assert sorted(p["relation"] for p in mine) == ["other", "self"]


async def test_a_patient_with_active_bookings_is_not_removed(appointments_api: Api) -> None:
    api = appointments_api
    me = api.token("acct-1")
    patient = await api.add_patient("acct-1")
    schedule = await api.publish(days_ahead=2)
    booked = await api.client.post(
        "/v1/appointments/appointments",
        headers=me,
        json={"patient_id": patient["id"], "schedule_id": schedule},
    )
    assert booked.status_code == 201, booked.text

    refused = await api.client.delete(f"{PATIENTS}/{patient['id']}", headers=me)
    assert refused.status_code == 409, refused.text
    assert (refused.json()["code"], refused.json()["active_bookings"]) == (
        "patient_has_active_bookings",
        1,
    )
    assert [p["id"] for p in (await api.client.get(PATIENTS, headers=me)).json()] == [patient["id"]]
    mine = await api.client.get("/v1/appointments/appointments", headers=me)
    assert [a["status"] for a in mine.json()["items"]] == ["booked"]

    cancelled = await api.client.post(
        f"/v1/appointments/appointments/{booked.json()['id']}/cancel",
        headers=me,
        json={"reason": "plans changed"},
    )
    assert cancelled.status_code == 200, cancelled.text
    removed = await api.client.delete(f"{PATIENTS}/{patient['id']}", headers=me)
    assert removed.status_code == 204, removed.text
