"""A ward nurse booking an inpatient's exam asks for the escort there (陪检): the booking
keeps it and ``appointment.booked`` carries it (the referrals service makes the transport);
a patient's account cannot ask for one (403 ``escort_staff_only``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from shared.mongo import Document
from shared.principal import Role
from tests.integration.appointments.conftest import Api

pytestmark = pytest.mark.integration
URL = "/v1/appointments/appointments"
ESCORT = {"mode": "wheelchair", "needs": ["oxygen"], "from_ward": "5W", "from_bed": "12"}


async def booked_events(
    api: Api, mongo: AsyncMongoClient[Document], patient_id: str
) -> list[dict[str, Any]]:
    db = mongo[api.settings.database_name]
    entries = await db["outbox"].find({"headers.ce_type": "careloop.appointment.booked"}).to_list()
    events = [json.loads(e["value"]) for e in entries]
    return [e for e in events if e["subject"] == patient_id]


async def test_a_nurses_exam_booking_carries_the_escort_in_appointment_booked(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api = appointments_api
    patient = await api.add_patient("acct-1")
    schedule = await api.publish(days_ahead=2, doctor="CT1")
    nurse = {**api.token("nurse-5w", Role.NURSE), "X-Access-Reason": "inpatient CT"}
    body = {"patient_id": patient["id"], "schedule_id": schedule, "escort": ESCORT}

    wrong = await api.client.post(
        URL, headers=nurse, json={**body, "escort": {**ESCORT, "mode": "ambulance"}}
    )
    assert wrong.status_code == 422, wrong.text
    booked = await api.client.post(URL, headers=nurse, json=body)
    assert booked.status_code == 201, booked.text
    appointment = booked.json()

    stored = await mongo[api.settings.database_name]["appointments"].find_one(
        {"_id": appointment["id"]}
    )
    assert stored is not None
    assert stored["escort"] == ESCORT
    (event,) = await booked_events(api, mongo, patient["id"])
    assert event["data"]["appointment_id"] == appointment["id"]
    assert event["data"]["booked_by_role"] == "nurse"
    assert event["data"]["escort"] == ESCORT


async def test_a_booking_without_escort_carries_none_and_a_patient_cannot_ask_for_one(
    appointments_api: Api, mongo: AsyncMongoClient[Document]
) -> None:
    api = appointments_api
    patient = await api.add_patient("acct-1")
    schedule = await api.publish(days_ahead=2, doctor="CT1")
    me = api.token("acct-1")
    body = {"patient_id": patient["id"], "schedule_id": schedule}

    refused = await api.client.post(URL, headers=me, json={**body, "escort": ESCORT})
    assert (refused.status_code, refused.json()["code"]) == (403, "escort_staff_only")
    booked = await api.client.post(URL, headers=me, json=body)
    assert booked.status_code == 201, booked.text
    (event,) = await booked_events(api, mongo, patient["id"])
    assert event["data"]["escort"] is None
