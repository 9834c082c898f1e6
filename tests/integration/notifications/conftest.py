"""The notifications service over real HTTP on the test stack, fed with events on Kafka.

Events are produced on the appointments topic exactly as the appointments service's relay
publishes them (envelope bytes, patient id as key, CloudEvents headers).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from services.appointments.events import (
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentRescheduled,
    PatientRegistered,
    WaitlistOffered,
)
from services.notifications.app import create_app
from services.notifications.bootstrap import Notifications
from services.notifications.settings import NotificationsSettings
from services.notifications.store import MESSAGES, SANDBOX
from shared.auth import TokenMinter
from shared.crypto import FieldCipher
from shared.events import Envelope, EventPayload, make_event
from shared.ids import new_id
from shared.kafka import ensure_topics
from shared.mongo import Document
from shared.outbox import request_headers
from shared.principal import Role
from shared.privacy import mask_phone
from shared.settings import ServiceSettings
from tests.factories import make_phone
from tests.support.kafka import wait_until
from tests.support.server import serve

ORG = "h1"


@dataclass
class NotificationsApi:
    client: httpx.AsyncClient
    minter: TokenMinter
    settings: NotificationsSettings
    app: FastAPI
    producer: AIOKafkaProducer

    @property
    def ctx(self) -> Notifications:
        ctx: Notifications = self.app.state.runtime.extras["notifications"]
        return ctx

    def token(self, subject: str, *roles: Role) -> dict[str, str]:
        minted = self.minter.mint(subject, [r.value for r in roles or (Role.PATIENT,)], org_id=ORG)
        return {"authorization": f"Bearer {minted}"}

    @property
    def service(self) -> dict[str, str]:
        return self.token("gateway", Role.SERVICE)

    async def publish(self, event: Envelope, service: str = "appointments") -> None:
        topic = f"{self.settings.kafka_topic_prefix}.{service}"
        headers = [(k, v.encode()) for k, v in request_headers(event).items()]
        await self.producer.send_and_wait(
            topic, event.to_bytes(), key=event.subject.encode(), headers=headers
        )

    async def register_patient(
        self, *, account_id: str | None = None, phone: str | None = None
    ) -> tuple[str, str, str]:
        """A patient known to notifications (as appointments announces one): ids and phone."""
        patient_id, account_id, phone = new_id(), account_id or new_id(), phone or make_phone()
        cipher = FieldCipher.from_settings(
            self.settings.pii_encryption_keys, self.settings.pii_hash_key
        )
        event = PatientRegistered(
            patient_id=patient_id,
            account_id=account_id,
            relation="self",
            phone_enc=cipher.encrypt(phone, context="patient.phone", record_id=patient_id),
            phone_masked=mask_phone(phone),
        )
        await self.publish(make_event(event, source="appointments", subject=patient_id))
        await wait_until(
            lambda: self._known(patient_id), timeout=30, what="the patient reaching notifications"
        )
        return patient_id, account_id, phone

    async def _known(self, patient_id: str) -> bool:
        return await self.ctx.recipients.get(patient_id) is not None

    async def messages(self, **query: Any) -> list[Document]:
        db = self.ctx.runtime.db
        return await db[MESSAGES].find(query).sort("_id", 1).to_list()

    async def sandbox(self, **query: Any) -> list[Document]:
        db = self.ctx.runtime.db
        return await db[SANDBOX].find(query).sort("_id", 1).to_list()

    async def wait_for_messages(
        self, count: int, timeout: float = 30, **query: Any
    ) -> list[Document]:
        async def enough() -> bool:
            return len(await self.messages(**query)) >= count

        await wait_until(enough, timeout=timeout, what=f"{count} messages matching {query}")
        return await self.messages(**query)

    async def wait_for_sandbox(
        self, count: int, timeout: float = 30, **query: Any
    ) -> list[Document]:
        async def enough() -> bool:
            return len(await self.sandbox(**query)) >= count

        await wait_until(enough, timeout=timeout, what=f"{count} sandbox deliveries {query}")
        found = await self.sandbox(**query)
        # the sandbox has the text before the send is recorded on its message (the next
        # transaction): wait for that too, so callers may read the messages at once
        ids = {d["message_id"] for d in found}

        async def recorded() -> bool:
            sent = await self.messages(_id={"$in": sorted(ids)}, sent_at={"$ne": None})
            return len(sent) == len(ids)

        await wait_until(recorded, timeout=timeout, what=f"the sends of {query} recorded")
        return found


def facts(
    patient_id: str,
    account_id: str,
    *,
    starts_in: timedelta = timedelta(days=2),
    appointment_id: str | None = None,
    preparation: str | None = None,
) -> dict[str, Any]:
    starts_at = (datetime.now(UTC) + starts_in).replace(microsecond=0)
    return {
        "appointment_id": appointment_id or new_id(),
        "patient_id": patient_id,
        "account_id": account_id,
        "org_id": ORG,
        "department_id": "dept-card",
        "department_name": "心内科",
        "resource_id": "doc-1",
        "resource_name": "王医生",
        "resource_kind": "doctor",
        "clinic_date": date.fromisoformat(starts_at.date().isoformat()),
        "session": "morning",
        "number": 7,
        "starts_at": starts_at,
        "ends_at": starts_at + timedelta(minutes=10),
        "channel": "mini_program",
        "preparation": preparation,
    }


def event(payload: EventPayload, patient_id: str) -> Envelope:
    return make_event(payload, source="appointments", subject=patient_id)


def booked(f: dict[str, Any]) -> Envelope:
    return event(AppointmentBooked(**f), f["patient_id"])


def cancelled(f: dict[str, Any], *, by: str = "patient", **extra: Any) -> Envelope:
    return event(
        AppointmentCancelled(**f, reason="patient request", cancelled_by_role=by, **extra),
        f["patient_id"],
    )


def rescheduled(old: dict[str, Any], new: dict[str, Any]) -> Envelope:
    payload = AppointmentRescheduled(
        **new, previous_appointment_id=old["appointment_id"], previous_starts_at=old["starts_at"]
    )
    return event(payload, new["patient_id"])


def waitlist_offered(patient_id: str, account_id: str, *, expires_in: timedelta) -> Envelope:
    now = datetime.now(UTC)
    payload = WaitlistOffered(
        waitlist_id=new_id(),
        patient_id=patient_id,
        account_id=account_id,
        schedule_id=new_id(),
        slot_id=new_id(),
        resource_name="王医生",
        department_name="心内科",
        clinic_date=(now + timedelta(days=1)).date(),
        session="morning",
        starts_at=now + timedelta(days=1),
        offer_expires_at=now + expires_in,
    )
    return event(payload, patient_id)


@pytest.fixture
def notifications_settings(make_settings: Callable[..., ServiceSettings]) -> Callable[..., Any]:
    def build(**overrides: Any) -> NotificationsSettings:
        values = {
            "delivery_retry_base_seconds": 0.1,
            "delivery_retry_max_seconds": 0.5,
            "quiet_hours_start": "",  # no quiet hours unless a test sets them
            "quiet_hours_end": "",
            **overrides,
        }
        settings = make_settings("notifications", NotificationsSettings, **values)
        assert isinstance(settings, NotificationsSettings)
        return settings

    return build


@pytest.fixture
async def notifications_api(
    notifications_settings: Callable[..., NotificationsSettings], minter: TokenMinter
) -> AsyncIterator[NotificationsApi]:
    async with running_notifications(notifications_settings(), minter) as api:
        yield api


@asynccontextmanager
async def running_notifications(
    settings: NotificationsSettings, minter: TokenMinter
) -> AsyncIterator[NotificationsApi]:
    """One replica of the service (HTTP, consumers, relay, jobs) and a producer of events."""
    await ensure_topics(
        settings.kafka_bootstrap,
        [f"{settings.kafka_topic_prefix}.appointments"],
        partitions=settings.kafka_partitions,
    )
    app = create_app(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        async with serve(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
            yield NotificationsApi(client, minter, settings, app, producer)
    finally:
        await producer.stop()
