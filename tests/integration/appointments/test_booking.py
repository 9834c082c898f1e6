"""Booking, cancelling and the rules around them, through the service's HTTP API."""

from __future__ import annotations

import pytest

from shared.principal import Role
from tests.integration.appointments.conftest import Api

pytestmark = pytest.mark.integration


async def test_a_patient_books_sees_and_cancels_an_appointment(appointments_api: Api) -> None:
    api = appointments_api
    patient = await api.add_patient("acct-1")
    assert "*" in patient["national_id_masked"]
    schedule = await api.publish(days_ahead=3)
    me = api.token("acct-1")
    booked = await api.client.post(
        "/v1/appointments/appointments",
        headers=me,
        json={"patient_id": patient["id"], "schedule_id": schedule},
    )
    assert booked.status_code == 201, booked.text
    body = booked.json()
    assert body["status"] == "booked"
    assert body["number"] >= 1
    assert body["resource_name"] == "王医生"
    assert body["starts_local"].endswith("+08:00")

    mine = await api.client.get("/v1/appointments/appointments", headers=me)
    assert [a["id"] for a in mine.json()["items"]] == [body["id"]]
    other = await api.client.get(
        f"/v1/appointments/appointments/{body['id']}", headers=api.token("acct-2")
    )
    assert other.status_code == 404

    cancelled = await api.client.post(
        f"/v1/appointments/appointments/{body['id']}/cancel",
        headers=me,
        json={"reason": "feeling better"},
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    again = await api.client.post(
        f"/v1/appointments/appointments/{body['id']}/cancel", headers=me, json={"reason": "twice"}
    )
    assert again.status_code == 409
    assert again.json()["code"] == "appointment_not_cancellable"


async def test_idempotency_key_returns_the_first_booking(appointments_api: Api) -> None:
    api = appointments_api
    patient = await api.add_patient("acct-1")
    schedule = await api.publish(days_ahead=2)
    headers = {**api.token("acct-1"), "Idempotency-Key": "retry-key-0001"}
    body = {"patient_id": patient["id"], "schedule_id": schedule}
    first = await api.client.post("/v1/appointments/appointments", headers=headers, json=body)
    second = await api.client.post("/v1/appointments/appointments", headers=headers, json=body)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    mine = await api.client.get("/v1/appointments/appointments", headers=api.token("acct-1"))
    assert len(mine.json()["items"]) == 1
    reused = await api.client.post(
        "/v1/appointments/appointments", headers=headers, json={**body, "slot_id": "other"}
    )
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"


async def test_bad_input_gets_specific_problems_and_writes_nothing(appointments_api: Api) -> None:
    api = appointments_api
    patient = await api.add_patient("acct-1")
    me = api.token("acct-1")
    unreleased = await api.publish(days_ahead=10)
    cases = [
        (
            {"patient_id": patient["id"], "schedule_id": "h1.NOPE.2030-01-01.morning"},
            404,
            "schedule_not_found",
        ),
        ({"patient_id": patient["id"], "schedule_id": unreleased}, 409, "slot_not_released"),
        ({"patient_id": "someone-else", "schedule_id": unreleased}, 404, "patient_not_found"),
        ({"patient_id": patient["id"]}, 422, "validation_error"),
    ]
    for body, status, code in cases:
        response = await api.client.post("/v1/appointments/appointments", headers=me, json=body)
        assert response.status_code == status, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == code
    refused = await api.client.post(
        "/v1/appointments/appointments",
        headers=me,
        json={"patient_id": patient["id"], "schedule_id": unreleased},
    )
    assert "opens_at" in refused.json()
    assert refused.json()["detail_zh"]
    bad_id = await api.client.post(
        "/v1/appointments/patients",
        headers=me,
        json={"name": "李四", "national_id": "11010119900307001X", "phone": "13800000000"},
    )
    assert bad_id.status_code == 422
    assert "11010119900307001X" not in bad_id.text
    mine = await api.client.get("/v1/appointments/appointments", headers=me)
    assert mine.json()["items"] == []


async def test_one_patient_cannot_hold_two_numbers_in_one_session(appointments_api: Api) -> None:
    api = appointments_api
    patient = await api.add_patient("acct-1")
    schedule = await api.publish(days_ahead=2)
    me = api.token("acct-1")
    body = {"patient_id": patient["id"], "schedule_id": schedule}
    assert (
        await api.client.post("/v1/appointments/appointments", headers=me, json=body)
    ).status_code == 201
    second = await api.client.post("/v1/appointments/appointments", headers=me, json=body)
    assert second.status_code == 409
    assert second.json()["code"] == "duplicate_booking"


async def test_staff_book_on_behalf_through_their_pool_and_are_audited(
    appointments_api: Api,
) -> None:
    api = appointments_api
    patient = await api.add_patient("acct-1")
    schedule = await api.publish(days_ahead=2)
    agent = api.token("agent-7", Role.AGENT)
    booking = {"patient_id": patient["id"], "schedule_id": schedule}
    url = "/v1/appointments/appointments"
    refused = await api.client.post(url, headers=agent, json=booking)
    assert (refused.status_code, refused.json()["code"]) == (400, "reason_required")
    booked = await api.client.post(
        url, headers={**agent, "X-Access-Reason": "hotline call"}, json=booking
    )
    assert booked.status_code == 201, booked.text
    assert booked.json()["channel"] == "hotline"
    assert booked.json()["booked_by_role"] == "agent"
    records = await api.client.get(
        f"/v1/appointments/staff/patients/{patient['id']}/appointments",
        params={"reason": "follow-up call"},
        headers=agent,
    )
    assert records.status_code == 200
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(api.settings.mongo_url)
    audit = await client[api.settings.database_name]["audit_log"].find().to_list()
    await client.close()
    assert {a["action"] for a in audit} == {"appointment.book", "appointment.list"}
    assert all(a["actor_id"] == "agent-7" for a in audit)
