"""The referrals service over real HTTP on the test stack, with a small alliance to refer in.

``seed_directory`` builds one medical alliance (医联体 ``yigongti-1``): a tertiary hospital,
two county hospitals and two township health centers, with departments, contacts and
referral relationships upward, downward and lateral. Two bulk calls: fast enough for
every test that needs a directory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.referrals.app import create_app
from services.referrals.bootstrap import built
from services.referrals.directory import Directory
from services.referrals.routes.deps import PREFIX
from services.referrals.settings import ReferralsSettings
from shared.auth import TokenMinter
from shared.principal import Role
from shared.settings import ServiceSettings
from tests.support.server import serve

ALLIANCE = "yigongti-1"
ORG = "county1"  # the organization of the fixture's staff tokens unless a test says otherwise
TERTIARY, COUNTIES, TOWNS = "prov1", ("county1", "county2"), ("town1", "town2")
UPWARD = [(t, c) for t in TOWNS for c in COUNTIES] + [(c, TERTIARY) for c in COUNTIES]


@dataclass
class Api:
    base: str
    client: httpx.AsyncClient
    minter: TokenMinter
    settings: ServiceSettings
    app: FastAPI

    def token(self, subject: str, *roles: Role, org: str | None = ORG) -> dict[str, str]:
        minted = self.minter.mint(subject, [r.value for r in roles or (Role.PATIENT,)], org_id=org)
        return {"authorization": f"Bearer {minted}"}

    @property
    def admin(self) -> dict[str, str]:
        """County hospital 1's own admin."""
        return self.token("admin-county1", Role.ADMIN)

    @property
    def alliance_admin(self) -> dict[str, str]:
        return self.token("alliance-admin-1", Role.ALLIANCE_ADMIN, org=None)

    @property
    def service(self) -> dict[str, str]:
        """The HIS integration."""
        return self.token("his-1", Role.SERVICE, org=None)

    @property
    def directory(self) -> Directory:
        return built(self.app.state.runtime).directory


def department(org_id: str, code: str, name: str, *specialties: str) -> dict[str, Any]:
    return {"department_id": f"{org_id}.{code}", "name": name, "specialties": list(specialties)}


def organization(
    org_id: str,
    name: str,
    level: int,
    kind: str,
    region: str,
    departments: list[dict[str, Any]],
    *,
    phone: str | None = None,
    intake: dict[str, Any] | None = None,
) -> dict[str, Any]:
    contact = {"name": f"{name}转诊办", "role": "coordinator", "title": "转诊专员"}
    return {
        "org_id": org_id,
        "name": name,
        "level": level,
        "kind": kind,
        "region": region,
        "alliance_ids": [ALLIANCE],
        "departments": departments,
        "contacts": [{**contact, "office_phone": phone}] if phone else [contact],
        **({"intake": intake} if intake else {}),
    }


def directory_body() -> list[dict[str, Any]]:
    county_deps = [
        ("CARD", "心血管内科", "cardiology"),
        ("NEUR", "神经内科", "neurology"),
        ("REHAB", "康复医学科", "rehabilitation"),
        ("GM", "全科医学科", "general_medicine"),
    ]
    return [
        organization(
            TERTIARY,
            "温州市第一人民医院",
            3,
            "tertiary",
            "330300",
            [
                department(TERTIARY, "CARD", "心血管内科", "cardiology", "cardiac_surgery"),
                department(TERTIARY, "NEUR", "神经内科", "neurology", "stroke"),
                department(TERTIARY, "ONC", "肿瘤科", "oncology"),
                department(TERTIARY, "REHAB", "康复医学科", "rehabilitation"),
            ],
            phone="0577-88001234",
            intake={"daily_capacity": 50, "sla_minutes": {"urgent": 90}},
        ),
        *(
            organization(
                org_id,
                f"苍南县第{i}人民医院",
                2,
                "county_hospital",
                "330327",
                [department(org_id, *d) for d in county_deps],
                phone=f"0577-6470{i}000",
            )
            for i, org_id in enumerate(COUNTIES, start=1)
        ),
        *(
            organization(
                org_id,
                name,
                1,
                "township_center",
                "330327",
                [
                    department(org_id, "GM", "全科", "general_medicine"),
                    department(org_id, "REHAB", "康复科", "rehabilitation"),
                ],
            )
            for org_id, name in zip(TOWNS, ("灵溪镇卫生院", "钱库镇卫生院"), strict=True)
        ),
    ]


def relationships_body() -> list[dict[str, str]]:
    up = [{"from_org_id": a, "to_org_id": b, "direction": "upward"} for a, b in UPWARD]
    down = [{"from_org_id": b, "to_org_id": a, "direction": "downward"} for a, b in UPWARD]
    county1, county2 = COUNTIES
    lateral = [
        {"from_org_id": county1, "to_org_id": county2, "direction": "lateral"},
        {"from_org_id": county2, "to_org_id": county1, "direction": "lateral"},
    ]
    return up + down + lateral


async def seed_directory(api: Api) -> None:
    """The alliance ``yigongti-1``: prov1 (level 3), county1/county2 (level 2, 330327),
    town1/town2 (level 1, 330327); towns refer up to both counties, counties to prov1,
    every upward relationship has its downward one, and the counties refer laterally."""
    saved = await api.client.put(
        f"{PREFIX}/admin/organizations", json=directory_body(), headers=api.service
    )
    assert saved.status_code == 200, saved.text
    linked = await api.client.put(
        f"{PREFIX}/admin/relationships", json=relationships_body(), headers=api.alliance_admin
    )
    assert linked.status_code == 200, linked.text


@asynccontextmanager
async def running_referrals(settings: ServiceSettings, minter: TokenMinter) -> AsyncIterator[Api]:
    """One replica of the referrals service (several may share one database and group)."""
    app = create_app(settings)
    async with (
        serve(app) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as client,
    ):
        yield Api(base, client, minter, settings, app)


@pytest.fixture
async def referrals(
    make_settings: Callable[..., ServiceSettings], minter: TokenMinter
) -> AsyncIterator[Api]:
    async with running_referrals(make_settings("referrals", ReferralsSettings), minter) as api:
        yield api
