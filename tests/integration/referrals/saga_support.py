"""What the referral saga tests share: appointments run in-process beside referrals, h1's
cardiology with referral pools to book from, the small alliance (a township center that
refers up to h1), and reading a case."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.appointments.app import create_app as appointments_app
from shared.auth import TokenMinter
from shared.principal import Role
from shared.settings import ServiceSettings
from tests.integration.appointments.conftest import ORG, seed_master_data
from tests.integration.appointments.conftest import Api as AppointmentsApi
from tests.integration.referrals.cases_support import CASES, command, referral_body, staff
from tests.integration.referrals.conftest import Api
from tests.support.kafka import wait_until
from tests.support.server import serve

TOWN = "town-lx"
HOSPITAL_TZ = timedelta(hours=8)
CARDIOLOGY = f"{ORG}.CARD"


@asynccontextmanager
async def running_appointments(
    settings: ServiceSettings, minter: TokenMinter
) -> AsyncIterator[AppointmentsApi]:
    async with (
        serve(appointments_app(settings)) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as client,
    ):
        yield AppointmentsApi(base, client, minter, settings)


def visit_session() -> tuple[str, str, str, str]:
    """A session whose check-in is open now or within a day: (date, session, starts, ends)."""
    local = datetime.now(UTC) + HOSPITAL_TZ
    if local.hour < 9:  # this afternoon
        return local.date().isoformat(), "afternoon", "14:00", "17:00"
    return (local.date() + timedelta(days=1)).isoformat(), "morning", "08:00", "12:00"


async def seed_hospital(api: AppointmentsApi) -> None:
    """h1's cardiology; check-in open a day ahead; the referral pool kept to the end (by
    default unused referral numbers go public 24 hours before)."""
    await seed_master_data(api)
    policy_url = f"/v1/appointments/admin/policies/{ORG}"
    policy = (await api.client.get(policy_url, headers=api.admin)).json()
    policy["checkin_opens_minutes_before"] = 1440
    policy["pool_return_hours_before"] = 0  # the referral pool stays one until the visit
    saved = await api.client.put(policy_url, json=policy, headers=api.admin)
    assert saved.status_code == 200, saved.text


async def prepare_hospital(api: AppointmentsApi) -> str:
    """:func:`seed_hospital` and one session of 10 (3 referral numbers) whose check-in is
    open now or within a day; its date."""
    await seed_hospital(api)
    day, session, starts, ends = visit_session()
    body = [
        {
            "org_id": ORG,
            "resource_code": "D2",
            "clinic_date": day,
            "session": session,
            "starts": starts,
            "ends": ends,
            "slot_count": 10,
        }
    ]
    published = await api.client.post(
        "/v1/appointments/admin/schedules", json=body, headers=api.admin
    )
    assert published.status_code == 201, published.text
    return day


def alliance() -> list[dict[str, Any]]:
    def org(org_id: str, level: int, kind: str, deps: list[tuple[str, str]]) -> dict[str, Any]:
        return {
            "org_id": org_id,
            "name": f"{org_id} 医疗机构",
            "level": level,
            "kind": kind,
            "region": "330327",
            "alliance_ids": ["yigongti-journey"],
            "departments": [
                {"department_id": f"{org_id}.{code}", "name": code, "specialties": [s]}
                for code, s in deps
            ],
            "contacts": [],
        }

    return [
        org(ORG, 2, "county_hospital", [("CARD", "cardiology")]),
        org(TOWN, 1, "township_center", [("REHAB", "rehabilitation")]),
    ]


async def seed_alliance(api: Api) -> None:
    saved = await api.client.put(
        "/v1/referrals/admin/organizations", json=alliance(), headers=api.service
    )
    assert saved.status_code == 200, saved.text
    rels = [
        {"from_org_id": TOWN, "to_org_id": ORG, "direction": "upward"},
        {"from_org_id": ORG, "to_org_id": TOWN, "direction": "downward"},
    ]
    linked = await api.client.put(
        "/v1/referrals/admin/relationships", json=rels, headers=api.service
    )
    assert linked.status_code == 200, linked.text


async def case_of(api: Api, referral_id: str) -> dict[str, Any]:
    reply = await api.client.get(f"{CASES}/{referral_id}", headers=api.service)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def sender(api: Api) -> dict[str, str]:
    """The township doctor who refers up (and may cancel)."""
    return staff(api, TOWN, Role.DOCTOR, "dr-town")


def coordinator(api: Api) -> dict[str, str]:
    """h1's referral coordinator (accepts, books again)."""
    return staff(api, ORG, Role.COORDINATOR, "coord-h1")


async def refer(api: Api, patient_id: str, *, timeout: float = 60) -> dict[str, Any]:
    """Submit an upward referral for ``patient_id`` once referrals knows the patient (it
    learns of patients from appointments' events); the case, routed to h1."""
    sent: list[httpx.Response] = []

    async def submitted() -> bool:
        reply = await api.client.post(CASES, json=referral_body(patient_id), headers=sender(api))
        sent.append(reply)
        return reply.status_code == 201

    await wait_until(submitted, timeout=timeout, interval=0.2, what="referrals knowing the patient")
    case = dict(sent[-1].json())
    assert case["receiving_org_id"] == ORG, case
    return case


async def accept(api: Api, case: dict[str, Any], **body: Any) -> dict[str, Any]:
    """h1 accepts ``case`` (as read at its version) into cardiology, asking for a visit."""
    reply = await command(
        api,
        case["referral_id"],
        "accept",
        coordinator(api),
        {"department_id": CARDIOLOGY, **body},
        version=case["version"],
    )
    assert reply.status_code == 200, reply.text
    accepted = dict(reply.json())
    assert accepted["business_status"] == "awaiting_booking", accepted
    return accepted
