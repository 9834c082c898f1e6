"""The surge's system and data: the whole system started the way ``make up`` starts it (same
replicas, the gateway's real rate limits) on free ports, then one session with ``numbers``
public numbers and ``patients`` patients, each on an account of their own.

Seeding goes straight to the appointments service (it is not what is measured): the HIS
publishes the session with a service token, and each patient's own account adds its
real-name patient (``POST /v1/appointments/patients``, then the texted code, read where the
SMS starts: the service's outbox), so the account really manages it.
Access tokens are minted with the dev signing key, as ``python -m devstack.token`` does.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import structlog
from pymongo import AsyncMongoClient

from devstack.keys import DevSecrets, ensure_dev_secrets
from devstack.stack import EmbeddedStack
from devstack.system import System
from devstack.up import configured_workers
from shared.auth import TokenMinter
from shared.crypto import FieldCipher

log = structlog.get_logger(__name__)

ORG = "surge"
VERIFICATION_EVENT = "careloop.patient.verification_requested"
CODE_CONTEXT = "patient_verification.code"
MAX_SLOTS = 300  # the most numbers one doctor's session may have (POST /admin/schedules)
DB_SUFFIX = ""
BROWSER_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800322c) NetType/WIFI"
)
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


@dataclass(frozen=True)
class Patient:
    n: int
    account_id: str
    token: str
    address: str  # the loopback source address this patient books from
    patient_id: str = ""
    schedule_id: str = ""  # the session this patient books


def source_address(n: int) -> str:
    """Patient ``n``'s own loopback address: 127.1.0.1, 127.1.0.2, ... (254 a /24)."""
    return f"127.1.{n // 254}.{n % 254 + 1}"


def national_id(n: int) -> str:
    """A valid resident ID, distinct for each ``n`` (birth day and sequence from it)."""
    birth = date(1950, 1, 1) + timedelta(days=n // 1000)
    first17 = f"110101{birth:%Y%m%d}{n % 1000:03d}"
    weighted = sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True))
    return first17 + ID_CHECK[weighted % 11]


@dataclass
class Running:
    system: System
    secrets: DevSecrets
    minter: TokenMinter

    @property
    def gateway(self) -> str:
        return self.system.gateway_url

    @property
    def appointments(self) -> str:
        return self.system.service_url("appointments")

    @property
    def mongo_url(self) -> str:
        return self.system.stack.mongo_url

    def stop(self) -> None:
        self.system.stop()


def start_system(state: Path | None = None) -> Running:
    """Everything ``make up`` starts, with its replicas (``CARELOOP_<SERVICE>_WORKERS``)."""
    state = state or Path(tempfile.mkdtemp(prefix="careloop-surge-"))
    secrets = ensure_dev_secrets(state)
    stack = EmbeddedStack.start(state, persistent_mongo=False)
    system = System(stack)
    try:
        system.start_services(secrets, workers=configured_workers(os.environ))
        system.wait_ready(timeout=180)
    except BaseException:
        system.stop()
        raise
    minter = TokenMinter(
        secrets.jwt_private_key_file.read_text(), issuer="careloop-gateway", audience="careloop"
    )
    return Running(system, secrets, minter)


async def publish_session(running: Running, numbers: int) -> list[str]:
    """The morning session two days ahead of one department with ``numbers`` numbers, all
    public; a doctor's schedule holds at most ``MAX_SLOTS``, so more numbers are shared out
    among as many doctors as needed. The doctors' schedule ids."""
    day = date.today() + timedelta(days=2)
    doctors = -(-numbers // MAX_SLOTS)
    shares = [numbers // doctors + (1 if d < numbers % doctors else 0) for d in range(doctors)]
    his = running.minter.mint("his-surge", ["service"], ttl_seconds=3600)
    admin = running.minter.mint("ops-surge", ["admin"], org_id=ORG, ttl_seconds=3600)
    policy = {"pool_shares": {"referral": 0, "hotline": 0, "onsite": 0}}
    calls: list[tuple[str, str, str, Any]] = [
        ("PUT", f"/admin/policies/{ORG}", admin, policy),
        ("PUT", "/admin/departments", his, [{"org_id": ORG, "code": "CARD", "name": "心内科"}]),
        ("PUT", "/admin/resources", his, [{
            "org_id": ORG, "code": f"D{d + 1}", "department_code": "CARD", "name": f"医生{d + 1}",
            "title": "主任医师", "clinic_type": "expert", "fee_cents": 5000,
        } for d in range(doctors)]),
        ("POST", "/admin/schedules", his, [{
            "org_id": ORG, "resource_code": f"D{d + 1}", "clinic_date": day.isoformat(),
            "session": "morning", "starts": "08:00", "ends": "12:00", "slot_count": share,
        } for d, share in enumerate(shares)]),
    ]  # fmt: skip
    async with httpx.AsyncClient(base_url=running.appointments, timeout=60) as client:
        for method, path, token, body in calls:
            answer = await client.request(
                method,
                f"/v1/appointments{path}",
                json=body,
                headers={"authorization": f"Bearer {token}"},
            )
            if answer.status_code >= 300:
                raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text}")
        schedules: list[dict[str, Any]] = answer.json()["schedules"]
    public = sum(s["pools"].get("public", 0) for s in schedules)
    if public != numbers:
        raise RuntimeError(f"expected {numbers} public numbers, got {schedules}")
    return [str(s["schedule_id"]) for s in schedules]


async def add_patients(
    running: Running, count: int, schedules: list[str], *, concurrency: int = 32
) -> list[Patient]:
    """``count`` accounts, each adding its own real-name patient (``self``); patient ``n``
    will book ``schedules[n % len(schedules)]``."""
    patients: list[Patient] = []
    queue = list(range(count))

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            n = queue.pop()
            account = f"pa-surge-{n:06d}"
            token = running.minter.mint(account, ["patient"], org_id=ORG, ttl_seconds=7200)
            body = {
                "name": f"患者{n}",
                "national_id": national_id(n),
                "phone": f"139{n:08d}",
                "relation": "self",
            }
            for attempt in range(5):  # adding the same patient again links it again: 201
                try:
                    answer = await add_patient(client, inbox, body, token)
                except httpx.TransportError:  # e.g. a kept-alive connection closed under us
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.2 * (attempt + 1))
                    continue
                if answer.status_code == 201:
                    break
                if answer.status_code < 500 or attempt == 4:
                    raise RuntimeError(f"patient {n}: {answer.status_code} {answer.text}")
                await asyncio.sleep(0.2 * (attempt + 1))
            if len(patients) % 2000 == 1999:
                log.info("surge.seeding", patients=len(patients) + 1, of=count)
            patients.append(
                Patient(
                    n,
                    account,
                    token,
                    source_address(n),
                    patient_id=answer.json()["id"],
                    schedule_id=schedules[n % len(schedules)],
                )
            )

    limits = httpx.Limits(max_connections=concurrency)
    inbox = CodeInbox(running)
    try:
        async with httpx.AsyncClient(base_url=running.appointments, timeout=60, limits=limits) as c:
            await asyncio.gather(*(worker(c) for _ in range(concurrency)))
    finally:
        await inbox.close()
    return sorted(patients, key=lambda p: p.n)


class CodeInbox:
    """The codes the appointments service texts, read from its outbox and decrypted with
    the dev PII key, as the notifications service does before it sends the SMS."""

    def __init__(self, running: Running) -> None:
        secrets = running.secrets
        self.cipher = FieldCipher.from_settings(secrets.pii_encryption_keys, secrets.pii_hash_key)
        self.client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(running.mongo_url)
        self.outbox = self.client[f"careloop_appointments{DB_SUFFIX}"]["outbox"]

    async def code(self, verification_id: str) -> str:
        for _ in range(600):
            query = {"_id": verification_id, "headers.ce_type": VERIFICATION_EVENT}
            doc = await self.outbox.find_one(query)
            if doc is not None:
                data = json.loads(doc["value"])["data"]
                return self.cipher.decrypt(
                    data["code_enc"], context=CODE_CONTEXT, record_id=verification_id
                )
            await asyncio.sleep(0.05)
        raise RuntimeError(f"no code was texted for verification {verification_id}")

    async def close(self) -> None:
        await self.client.close()


async def add_patient(
    client: httpx.AsyncClient, inbox: CodeInbox, body: dict[str, Any], token: str
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"}
    asked = await client.post("/v1/appointments/patients", json=body, headers=headers)
    if asked.status_code != 202:
        return asked
    verification = asked.json()["verification_id"]
    code = await inbox.code(verification)
    return await client.post(
        f"/v1/appointments/patients/verifications/{verification}",
        json={"code": code},
        headers=headers,
    )


async def wait_quiet(running: Running, timeout: float = 300.0) -> float:
    """Wait until what seeding set off is done (appointments' outbox published, every
    consumer caught up and idle), so the surge runs on a quiet system; the seconds waited."""
    admin = running.minter.mint("ops-surge", ["admin"], ttl_seconds=600)
    loop = asyncio.get_running_loop()
    started = loop.time()
    last, still = -1.0, 0
    async with httpx.AsyncClient(timeout=10) as client:
        while loop.time() < started + timeout:
            outbox = await client.get(
                f"{running.appointments}/v1/appointments/ops/outbox",
                headers={"authorization": f"Bearer {admin}"},
            )
            pending = outbox.json().get("pending", 1) if outbox.status_code == 200 else 1
            lag, consumed = 0.0, 0.0
            for proc in running.system.processes.values():
                text = (await client.get(f"http://127.0.0.1:{proc.port}/metrics")).text
                lag += _metric_sum(text, "careloop_consumer_lag")
                consumed += _metric_sum(text, "careloop_events_consumed_total")
            still = still + 1 if (not pending and lag == 0 and consumed == last) else 0
            if still >= 2:
                return loop.time() - started
            last = consumed
            await asyncio.sleep(1.5)
    log.warning("surge.not_quiet", timeout_seconds=timeout)
    return loop.time() - started


def _metric_sum(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((name + "{", name + " "))
    )
