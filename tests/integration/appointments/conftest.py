"""The appointments service over real HTTP on the test stack, with master data to book from."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.appointments.app import create_app
from services.appointments.settings import AppointmentsSettings
from shared.auth import TokenMinter
from shared.principal import Role
from shared.settings import ServiceSettings
from tests.factories import make_national_id, make_phone
from tests.support.patient_codes import add_patient
from tests.support.server import serve
from tests.support.service_process import service_process

ORG = "h1"


@dataclass
class Api:
    base: str
    client: httpx.AsyncClient
    minter: TokenMinter
    settings: ServiceSettings

    def token(self, subject: str, *roles: Role, org: str | None = ORG) -> dict[str, str]:
        minted = self.minter.mint(subject, [r.value for r in roles or (Role.PATIENT,)], org_id=org)
        return {"authorization": f"Bearer {minted}"}

    @property
    def admin(self) -> dict[str, str]:
        return self.token("admin-1", Role.ADMIN)

    async def add_patient(self, account: str, name: str = "张三") -> dict[str, Any]:
        body = {"name": name, "national_id": make_national_id(), "phone": make_phone()}
        response = await add_patient(self.client, self.settings, self.token(account), body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def publish(
        self,
        *,
        days_ahead: int,
        slot_count: int = 10,
        doctor: str = "D1",
        session: str = "morning",
        clinic_type: str | None = None,
        department: str = "CARD",
    ) -> str:
        day = clinic_day(days_ahead)
        body = [
            {
                "org_id": ORG,
                "resource_code": doctor,
                "clinic_date": day.isoformat(),
                "session": session,
                "starts": "08:00" if session == "morning" else "14:00",
                "ends": "12:00" if session == "morning" else "17:00",
                "slot_count": slot_count,
                **({"clinic_type": clinic_type} if clinic_type else {}),
            }
        ]
        response = await self.client.post(
            "/v1/appointments/admin/schedules", json=body, headers=self.admin
        )
        assert response.status_code == 201, response.text
        return str(response.json()["schedules"][0]["schedule_id"])


def clinic_day(days_ahead: int) -> date:
    return (datetime.now(UTC) + timedelta(hours=8)).date() + timedelta(days=days_ahead)


async def seed_master_data(api: Api) -> None:
    deps = [
        {"org_id": ORG, "code": "CARD", "name": "心内科"},
        {"org_id": ORG, "code": "RAD", "name": "放射科", "kind": "exam"},
    ]
    response = await api.client.put(
        "/v1/appointments/admin/departments", json=deps, headers=api.admin
    )
    assert response.status_code == 200, response.text
    resources = [
        {
            "org_id": ORG,
            "code": "D1",
            "department_code": "CARD",
            "name": "王医生",
            "title": "主任医师",
            "clinic_type": "expert",
            "fee_cents": 5000,
        },
        {
            "org_id": ORG,
            "code": "D2",
            "department_code": "CARD",
            "name": "李医生",
            "title": "主治医师",
            "clinic_type": "general",
            "fee_cents": 2000,
        },
        {
            "org_id": ORG,
            "code": "CT1",
            "department_code": "RAD",
            "name": "CT 1号机",
            "kind": "exam",
            "exam_type": "CT",
            "preparation": "检查前禁食 4 小时",
        },
    ]
    response = await api.client.put(
        "/v1/appointments/admin/resources", json=resources, headers=api.admin
    )
    assert response.status_code == 200, response.text


@pytest.fixture
async def appointments_api(
    make_settings: Callable[..., ServiceSettings], minter: TokenMinter
) -> AsyncIterator[Api]:
    settings = make_settings("appointments", AppointmentsSettings)
    async with (
        serve(create_app(settings)) as base,
        httpx.AsyncClient(
            base_url=base, timeout=30, limits=httpx.Limits(max_connections=400)
        ) as client,
    ):
        api = Api(base, client, minter, settings)
        await seed_master_data(api)
        yield api


@pytest.fixture
async def appointments_process_api(
    make_settings: Callable[..., ServiceSettings], minter: TokenMinter, tmp_path: Path
) -> AsyncIterator[Api]:
    """The service as its own process, as in production: for load and crash tests."""
    settings = make_settings("appointments", AppointmentsSettings)
    proc = service_process("appointments", settings, tmp_path).start(timeout=60)
    base = f"http://127.0.0.1:{proc.port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            for _ in range(200):
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            api = Api(base, client, minter, settings)
            await seed_master_data(api)
            yield api
    finally:
        proc.stop()
