"""The followup service over real HTTP and MLLP on the test stack, with a Kafka producer to
play the HIS, appointments and referrals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from services.appointments.events import PatientRegistered
from services.followup.app import create_app
from services.followup.bootstrap import Followup
from services.followup.mllp import END_BLOCK, frame
from services.followup.settings import FollowupSettings
from shared.auth import TokenMinter
from shared.crypto import FieldCipher
from shared.events import Envelope, make_event
from shared.ids import new_id
from shared.mongo import Document
from shared.outbox import request_headers
from shared.principal import Role
from shared.privacy import mask_phone
from shared.settings import ServiceSettings
from tests.factories import make_national_id, make_phone
from tests.support.kafka import wait_until
from tests.support.server import serve

ORG = "h1"
PREFIX = "/v1/followup"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def hl7_time(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y%m%d%H%M%S")


def adt(
    trigger: str = "A03",
    *,
    control_id: str | None = None,
    national_id: str | None = None,
    facility: str = ORG,
    department: str = "CARD",
    doctor: str = "doc-1",
    discharged_at: datetime | None = None,
    diagnosis: str = "I21.9",
    visit: str | None = None,
    disposition: str = "01",
    sep: str = "\r",
) -> str:
    """An ADT message as a HIS sends it (PID-3: an MRN and the national ID)."""
    control_id = control_id or new_id()[-12:]
    ids = "MRN" + control_id + "^^^" + facility + "^MR"
    if national_id:
        ids += "~" + national_id + "^^^CHN^NNCHN"
    pv1 = ["PV1", "1", "I", f"{department}^301^2^{facility}", "", "", "", f"{doctor}^Zhang^Wei"]
    pv1 += [""] * 11 + [visit or f"V{control_id}"] + [""] * 16 + [disposition]
    pv1 += [""] * 7 + ["", hl7_time(discharged_at) if discharged_at else ""]
    segments = [
        f"MSH|^~\\&|HIS|{facility}|CARELOOP|CL|20260310101500||ADT^{trigger}^ADT_{trigger}|"
        f"{control_id}|P|2.5",
        f"EVN|{trigger}|20260310101400",
        f"PID|1||{ids}||王^小明||19800102|M",
        "|".join(pv1),
        f"DG1|1||{diagnosis}^Acute myocardial infarction^I10",
        "ZPV|custom|segment",
    ]
    return sep.join(segments) + sep


@dataclass
class FollowupApi:
    client: httpx.AsyncClient
    minter: TokenMinter
    settings: FollowupSettings
    app: FastAPI
    producer: AIOKafkaProducer

    @property
    def ctx(self) -> Followup:
        ctx: Followup = self.app.state.runtime.extras["followup"]
        return ctx

    @property
    def mllp_port(self) -> int:
        port: int = self.app.state.runtime.extras["mllp_port"]
        return port

    def token(self, subject: str, *roles: Role, org: str | None = ORG) -> dict[str, str]:
        minted = self.minter.mint(subject, [r.value for r in roles or (Role.PATIENT,)], org_id=org)
        return {"authorization": f"Bearer {minted}"}

    def agent(self, name: str = "agent-1", org: str = ORG) -> dict[str, str]:
        return {**self.token(name, Role.AGENT, org=org), "x-access-reason": "follow-up call"}

    @property
    def admin(self) -> dict[str, str]:
        return {**self.token("admin-h1", Role.ADMIN), "x-access-reason": "review"}

    @property
    def alliance_admin(self) -> dict[str, str]:
        return self.token("alliance-admin-1", Role.ALLIANCE_ADMIN, org=None)

    @property
    def service(self) -> dict[str, str]:
        return self.token("his-1", Role.SERVICE, org=None)

    async def publish(self, event: Envelope, service: str) -> None:
        topic = f"{self.settings.kafka_topic_prefix}.{service}"
        headers = [(k, v.encode()) for k, v in request_headers(event).items()]
        await self.producer.send_and_wait(
            topic, event.to_bytes(), key=event.subject.encode(), headers=headers
        )

    async def register_patient(self, national_id: str | None = None) -> tuple[str, str, str]:
        """A real-name patient as appointments announces one: (patient id, account, ID)."""
        national_id = national_id or make_national_id()
        patient_id, account_id, phone = new_id(), new_id(), make_phone()
        cipher = FieldCipher.from_settings(
            self.settings.pii_encryption_keys, self.settings.pii_hash_key
        )
        event = PatientRegistered(
            patient_id=patient_id,
            account_id=account_id,
            relation="self",
            phone_enc=cipher.encrypt(phone, context="patient.phone", record_id=patient_id),
            phone_masked=mask_phone(phone),
            national_id_hash=cipher.lookup_hash_national_id(national_id),
        )
        await self.publish(
            make_event(event, source="appointments", subject=patient_id), "appointments"
        )
        await wait_until(
            lambda: self.ctx.patients.exists(patient_id), timeout=30, what="the patient"
        )
        return patient_id, account_id, national_id

    async def mllp(self, *messages: str) -> list[str]:
        """Send messages over one MLLP connection; the ACKs, unframed."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.mllp_port)
        answers = []
        try:
            for message in messages:
                writer.write(frame(message))
                await writer.drain()
                raw = await asyncio.wait_for(reader.readuntil(END_BLOCK), 30)
                answers.append(raw[1 : -len(END_BLOCK)].decode())
        finally:
            writer.close()
        return answers

    async def plans_of(self, patient_id: str) -> list[Document]:
        return await self.ctx.db["plans"].find({"patient_id": patient_id}).to_list(None)

    async def tasks_of(self, plan_id: str) -> list[Document]:
        return (
            await self.ctx.db["followup_tasks"]
            .find({"plan_id": plan_id})
            .sort("step")
            .to_list(None)
        )

    async def task(self, task_id: str) -> Document:
        doc = await self.ctx.db["followup_tasks"].find_one({"_id": task_id})
        assert doc is not None
        return doc

    async def wait_task(self, task_id: str, status: str, timeout: float = 30) -> Document:
        async def reached() -> bool:
            doc = await self.ctx.db["followup_tasks"].find_one({"_id": task_id})
            return doc is not None and doc["status"] == status

        await wait_until(reached, timeout=timeout, what=f"task {status}")
        doc = await self.ctx.db["followup_tasks"].find_one({"_id": task_id})
        assert doc is not None
        return doc

    async def outbox(self, event_type: str) -> list[dict[str, Any]]:
        docs = await self.ctx.db["outbox"].find().to_list(None)
        found = [Envelope.from_bytes(d["value"]) for d in docs]
        return [e.data for e in found if e.type == event_type]


@pytest.fixture
async def followup(
    make_settings: Callable[..., ServiceSettings], minter: TokenMinter
) -> AsyncIterator[FollowupApi]:
    settings = make_settings(
        "followup", FollowupSettings, mllp_port=0, no_answer_retry_minutes=0.02
    )
    assert isinstance(settings, FollowupSettings)
    app = create_app(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        async with serve(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
            yield FollowupApi(client, minter, settings, app, producer)
    finally:
        await producer.stop()
