"""The HL7 intake under a SIGKILL of the followup process.

Followup runs as its own process, its MLLP listener on a known port. Six patients are
discharged over one MLLP connection; the process is killed right after the fourth message
is written, before its ACK is read (so the kill lands before, during or after that
message's transaction). A new process on the same settings takes over and, as an interface
engine does, the HIS sends again every message it has no ACK for. Each message then has
exactly one intake record, one discharge, one plan, one plan.created event and one timed
job per task; every resent message is answered AA (docs/architecture.md §6).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from devstack.processes import free_port
from services.appointments.events import PatientRegistered
from services.followup.mllp import END_BLOCK, frame
from services.followup.settings import FollowupSettings
from shared.crypto import FieldCipher
from shared.events import Envelope, make_event
from shared.ids import new_id
from shared.jobs import JOBS
from shared.mongo import Document
from shared.outbox import OUTBOX, request_headers
from shared.settings import ServiceSettings
from tests.factories import make_national_id
from tests.integration.followup.conftest import adt
from tests.support.kafka import wait_until
from tests.support.service_process import restartable, wait_ready

pytestmark = pytest.mark.integration

PATIENTS = 6
KILL_AFTER = 4  # written, not acknowledged


async def register(settings: FollowupSettings, national_ids: list[str]) -> list[str]:
    cipher = FieldCipher.from_settings(settings.pii_encryption_keys, settings.pii_hash_key)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    ids = []
    try:
        for national_id in national_ids:
            patient_id = new_id()
            payload = PatientRegistered(
                patient_id=patient_id,
                account_id=new_id(),
                relation="self",
                phone_enc="unused",
                phone_masked="139****0000",
                national_id_hash=cipher.lookup_hash_national_id(national_id),
            )
            event = make_event(payload, source="appointments", subject=patient_id)
            await producer.send_and_wait(
                f"{settings.kafka_topic_prefix}.appointments",
                event.to_bytes(),
                key=patient_id.encode(),
                headers=[(k, v.encode()) for k, v in request_headers(event).items()],
            )
            ids.append(patient_id)
    finally:
        await producer.stop()
    return ids


async def send(port: int, messages: list[str]) -> list[str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        answers = []
        for message in messages:
            writer.write(frame(message))
            await writer.drain()
            raw = await asyncio.wait_for(reader.readuntil(END_BLOCK), 30)
            answers.append(raw[1 : -len(END_BLOCK)].decode())
        return answers
    finally:
        writer.close()


async def test_sigkill_mid_intake_plans_each_discharge_once(
    make_settings: Callable[..., ServiceSettings],
    mongo: AsyncMongoClient[Document],
    tmp_path: Path,
) -> None:
    mllp_port = free_port()
    settings = make_settings("followup", FollowupSettings, mllp_port=mllp_port)
    assert isinstance(settings, FollowupSettings)
    db = mongo[settings.database_name]
    national_ids = [make_national_id() for _ in range(PATIENTS)]
    yesterday = datetime.now(UTC) - timedelta(days=1)
    messages = [
        adt(control_id=f"CRASH-{n}", national_id=nid, discharged_at=yesterday)
        for n, nid in enumerate(national_ids)
    ]
    with restartable("followup", settings, tmp_path) as start:
        first = start()
        await wait_ready(f"http://127.0.0.1:{first.port}")
        patient_ids = await register(settings, national_ids)

        async def all_known() -> bool:
            found = await db["known_patients"].count_documents({"_id": {"$in": patient_ids}})
            return found == PATIENTS

        await wait_until(all_known, timeout=60, what="followup knowing the patients")
        acked = await send(mllp_port, messages[: KILL_AFTER - 1])
        reader, writer = await asyncio.open_connection("127.0.0.1", mllp_port)
        writer.write(frame(messages[KILL_AFTER - 1]))
        await writer.drain()
        first.kill()  # SIGKILL: no ACK read for the fourth message
        writer.close()
        with contextlib.suppress(Exception):
            await reader.read()

        second = start()
        await wait_ready(f"http://127.0.0.1:{second.port}")
        resent = await send(mllp_port, messages[KILL_AFTER - 1 :])

    for answer in acked + resent:
        assert "\rMSA|AA|" in "\r" + answer, answer
    for patient_id in patient_ids:
        plans = await db["plans"].find({"patient_id": patient_id}).to_list(None)
        assert len(plans) == 1, patient_id
    assert await db["intake_messages"].count_documents({}) == PATIENTS
    assert await db["discharges"].count_documents({}) == PATIENTS
    created = Counter(
        Envelope.from_bytes(d["value"]).data["plan_id"]
        for d in await db[OUTBOX].find().to_list(None)
        if Envelope.from_bytes(d["value"]).type == "careloop.followup.plan.created"
    )
    assert len(created) == PATIENTS
    assert set(created.values()) == {1}
    tasks = await db["followup_tasks"].find().to_list(None)
    task_jobs = await db[JOBS].find({"kind": "followup.task_due"}).to_list(None)
    jobs = Counter(j["payload"]["task_id"] for j in task_jobs)
    assert {t["_id"] for t in tasks} == set(jobs)
    assert set(jobs.values()) == {1}
