"""Adding a real-name patient in tests: ask, read the texted code, confirm.

The appointments service texts the code through the notifications service. A test that runs
appointments without notifications reads the code where the SMS starts: the
``patient.verification_requested`` event in the service's outbox (real Mongo), decrypted with
the test's PII key, as the notifications service would. Journeys that run both services
read the sandbox provider's deliveries instead (``tests/e2e``).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from shared.crypto import FieldCipher
from shared.mongo import Document
from shared.settings import ServiceSettings

PATIENTS = "/v1/appointments/patients"
VERIFICATION_EVENT = "careloop.patient.verification_requested"
CODE_CONTEXT = "patient_verification.code"


async def texted_code(settings: ServiceSettings, verification_id: str) -> str:
    """The code the service texted for ``verification_id`` (waits for its commit)."""
    cipher = FieldCipher.from_settings(settings.pii_encryption_keys, settings.pii_hash_key)
    client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongo_url)
    try:
        outbox = client[settings.database_name]["outbox"]
        for _ in range(100):
            query = {"_id": verification_id, "headers.ce_type": VERIFICATION_EVENT}
            doc = await outbox.find_one(query)
            if doc is not None:
                data = json.loads(doc["value"])["data"]
                return cipher.decrypt(
                    data["code_enc"], context=CODE_CONTEXT, record_id=verification_id
                )
            await asyncio.sleep(0.05)
    finally:
        await client.close()
    raise AssertionError(f"no code was texted for verification {verification_id}")


async def add_patient(
    client: httpx.AsyncClient,
    settings: ServiceSettings,
    headers: dict[str, str],
    body: dict[str, Any],
) -> httpx.Response:
    """Ask to add the patient, then confirm with the texted code: the confirmation's answer
    (201 with the patient; the request's answer if it was refused)."""
    asked = await client.post(PATIENTS, headers=headers, json=body)
    if asked.status_code != 202:
        return asked
    verification_id = asked.json()["verification_id"]
    code = await texted_code(settings, verification_id)
    return await client.post(
        f"{PATIENTS}/verifications/{verification_id}", headers=headers, json={"code": code}
    )


async def add_patient_by_sms(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    body: dict[str, Any],
    operator: dict[str, str],
    *,
    timeout: float = 40.0,
) -> httpx.Response:
    """The whole path through a running system: ask, read the SMS the sandbox provider
    delivered to the phone (``operator`` may read its deliveries), confirm."""
    asked = await client.post(PATIENTS, headers=headers, json=body)
    if asked.status_code != 202:
        return asked
    verification_id = asked.json()["verification_id"]
    masked = body["phone"][:3] + "****" + body["phone"][-4:]
    deadline = asyncio.get_running_loop().time() + timeout
    code = None
    while code is None:
        sent = await client.get(
            "/v1/notifications/sandbox/deliveries",
            params={"kind": "patient.link_code", "reason": "test: the texted code", "limit": 500},
            headers=operator,
        )
        assert sent.status_code == 200, sent.text
        mine = [d for d in sent.json() if d["address_masked"] == masked]
        if mine:
            found = re.search(r"(\d{6})", mine[-1]["body"])
            assert found, mine[-1]["body"]
            code = found.group(1)
        elif asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no patient code was texted to {masked}")
        else:
            await asyncio.sleep(0.2)
    return await client.post(
        f"{PATIENTS}/verifications/{verification_id}", headers=headers, json={"code": code}
    )
