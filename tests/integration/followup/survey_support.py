"""The followup service with its survey delays set small, and outpatient check-ins as
appointments announces them, for the survey and dashboard tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from services.appointments.events import AppointmentCheckedIn
from services.followup.app import create_app
from services.followup.settings import FollowupSettings
from shared.auth import TokenMinter
from shared.events import make_event
from shared.ids import new_id
from shared.mongo import Document
from shared.settings import ServiceSettings
from tests.integration.followup.conftest import ORG, FollowupApi
from tests.support.kafka import wait_until
from tests.support.server import serve

# the satisfaction-outpatient answers: ordinals 4, 5, 3, 4 -> mean 4.0
GOOD_ANSWERS = {
    "registration": "satisfied",
    "doctor": "very_satisfied",
    "environment": "neutral",
    "overall": "satisfied",
}


@contextlib.asynccontextmanager
async def followup_app(
    make_settings: Callable[..., ServiceSettings], minter: TokenMinter, **overrides: Any
) -> AsyncIterator[FollowupApi]:
    """The service as the ``followup`` fixture runs it, with ``overrides`` in its settings
    (surveys are sent at once by default)."""
    values: dict[str, Any] = {
        "mllp_port": 0,
        "survey_delay_hours": 0,
        "survey_delay_hours_inpatient": 0,
        **overrides,
    }
    settings = make_settings("followup", FollowupSettings, **values)
    assert isinstance(settings, FollowupSettings)
    app = create_app(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        async with serve(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
            yield FollowupApi(client, minter, settings, app, producer)
    finally:
        await producer.stop()


async def check_in(
    api: FollowupApi,
    patient_id: str,
    account_id: str,
    *,
    appointment_id: str | None = None,
    org: str = ORG,
    department: str = "h1.CARD",
    doctor: str = "dr-wang",
) -> str:
    """Appointments announces an outpatient's check-in (a visit that just ended)."""
    appointment_id = appointment_id or new_id()
    now = datetime.now(UTC)
    payload = AppointmentCheckedIn(
        appointment_id=appointment_id,
        patient_id=patient_id,
        account_id=account_id,
        org_id=org,
        department_id=department,
        department_name="Cardiology",
        resource_id=doctor,
        resource_name="Dr Wang",
        resource_kind="doctor",
        clinic_date=now.date(),
        session="am",
        number=3,
        starts_at=now - timedelta(minutes=40),
        ends_at=now - timedelta(minutes=10),
        channel="app",
        queue_number=3,
    )
    await api.publish(
        make_event(payload, source="appointments", subject=patient_id), "appointments"
    )
    return appointment_id


async def wait_survey(api: FollowupApi, visit_id: str, status: str = "sent") -> Document:
    async def reached() -> bool:
        doc = await api.ctx.db["surveys"].find_one({"visit_id": visit_id})
        return doc is not None and doc["status"] == status

    await wait_until(reached, timeout=30, what=f"survey {status}")
    doc = await api.ctx.db["surveys"].find_one({"visit_id": visit_id})
    assert doc is not None
    return doc
