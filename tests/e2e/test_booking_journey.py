"""A patient's booking journey through the gateway; its event reaches a Kafka consumer."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from devstack.keys import DevSecrets
from devstack.system import System
from shared.auth import TokenMinter
from tests.factories import make_national_id, make_phone
from tests.support.patient_codes import add_patient_by_sms

pytestmark = pytest.mark.e2e
ORG = "e2e-h"


def minter(secrets: DevSecrets) -> TokenMinter:
    return TokenMinter(
        secrets.jwt_private_key_file.read_text(), issuer="careloop-gateway", audience="careloop"
    )


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_a_booking_made_through_the_gateway_reaches_an_event_consumer(
    system: System, dev_secrets: DevSecrets
) -> None:
    tokens = minter(dev_secrets)
    admin = bearer(tokens.mint("his-sync", ["service"]))
    patient = bearer(tokens.mint("acct-e2e", ["patient"], org_id=ORG))
    day = (datetime.now(UTC) + timedelta(hours=8)).date() + timedelta(days=2)
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=20) as gw:
        assert (
            await gw.put(
                "/v1/appointments/admin/departments",
                headers=admin,
                json=[{"org_id": ORG, "code": "GI", "name": "消化内科"}],
            )
        ).status_code == 200
        assert (
            await gw.put(
                "/v1/appointments/admin/resources",
                headers=admin,
                json=[
                    {
                        "org_id": ORG,
                        "code": "EN1",
                        "department_code": "GI",
                        "name": "胃镜室",
                        "kind": "exam",
                        "exam_type": "endoscopy",
                        "preparation": "检查前一晚 22 点后禁食禁水",
                    }
                ],
            )
        ).status_code == 200
        published = await gw.post(
            "/v1/appointments/admin/schedules",
            headers=admin,
            json=[
                {
                    "org_id": ORG,
                    "resource_code": "EN1",
                    "clinic_date": day.isoformat(),
                    "session": "morning",
                    "starts": "08:00",
                    "ends": "11:00",
                    "slot_count": 6,
                }
            ],
        )
        assert published.status_code == 201, published.text
        schedule_id = published.json()["schedules"][0]["schedule_id"]

        person = await add_patient_by_sms(
            gw,
            patient,
            {"name": "王五", "national_id": make_national_id(), "phone": make_phone()},
            admin,
        )
        assert person.status_code == 201, person.text
        found = await gw.get(
            "/v1/appointments/schedules",
            headers=patient,
            params={"org_id": ORG, "date_from": day.isoformat()},
        )
        assert [s["id"] for s in found.json()] == [schedule_id]
        assert found.json()[0]["remaining"]["public"] > 0

        booked = await gw.post(
            "/v1/appointments/appointments",
            json={"patient_id": person.json()["id"], "schedule_id": schedule_id},
            headers={**patient, "x-request-id": "journey-req-1", "Idempotency-Key": "journey-0001"},
        )
        assert booked.status_code == 201, booked.text
        appointment = booked.json()
        assert appointment["preparation"].startswith("检查前")
        # the gateway names the request itself; the client's id is only logged beside it
        request_id = booked.headers["x-request-id"]
        assert request_id != "journey-req-1"

    consumer = AIOKafkaConsumer(
        "careloop.appointments",
        bootstrap_servers=system.stack.kafka_bootstrap,
        group_id="e2e-notifications-probe",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        event = await asyncio.wait_for(_find(consumer, appointment["id"]), 30)
    finally:
        await consumer.stop()
    assert event["type"] == "careloop.appointment.booked"
    assert event["subject"] == person.json()["id"]
    assert event["correlationid"] == request_id
    assert event["data"]["preparation"].startswith("检查前")
    assert "national_id" not in json.dumps(event)


async def _find(consumer: AIOKafkaConsumer, appointment_id: str) -> dict[str, object]:
    while True:
        batch = await consumer.getmany(timeout_ms=500)
        for records in batch.values():
            for record in records:
                event = json.loads(record.value or b"{}")
                if event.get("data", {}).get("appointment_id") == appointment_id:
                    return dict(event)
