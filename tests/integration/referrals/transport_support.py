"""What the transport tests share: a roster, a patient known at an organization (a booking
there, as appointments announces it), a transport request and reading one."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.appointments.events import AppointmentBooked
from services.referrals.bootstrap import built
from shared.events import make_event
from shared.ids import new_id
from shared.principal import Role
from tests.integration.referrals.cases_support import known_patient, staff
from tests.integration.referrals.conftest import Api
from tests.support.kafka import publish_events, wait_until

T = "/v1/referrals/transports"
PORTERS = "/v1/referrals/admin/porters"
DUTY = "/v1/referrals/porters/me/duty"
NEXT = "/v1/referrals/porters/me/next"
WARD_ZONE = "inpatient-5"


def appointment(patient_id: str, org_id: str, **changes: Any) -> dict[str, Any]:
    starts = datetime.now(UTC) + timedelta(hours=3)
    data: dict[str, Any] = {
        "appointment_id": new_id(),
        "patient_id": patient_id,
        "account_id": "acct-1",
        "org_id": org_id,
        "department_id": f"{org_id}.RAD",
        "department_name": "放射科",
        "resource_id": "ct-2",
        "resource_name": "CT 2",
        "resource_kind": "exam_room",
        "clinic_date": date.today(),
        "session": "afternoon",
        "number": 4,
        "starts_at": starts,
        "ends_at": starts + timedelta(minutes=20),
        "channel": "nurse",
    }
    data.update(changes)
    return data


async def patient_at(api: Api, org_id: str, account_id: str | None = None) -> str:
    """A real-name patient who booked at ``org_id`` (so known there)."""
    patient_id = await known_patient(api, account_id)
    booked = AppointmentBooked(**appointment(patient_id, org_id))
    await publish_events(
        api.settings,
        "appointments",
        [make_event(booked, source="appointments", subject=patient_id)],
    )
    patients = built(api.app.state.runtime).patients

    async def known_there() -> bool:
        return await patients.known_at(patient_id, org_id)

    await wait_until(known_there, timeout=30, what=f"the patient known at {org_id}")
    return patient_id


def porter(
    porter_id: str, org_id: str, zones: list[str], *skills: str, kind: str = "porter"
) -> dict[str, Any]:
    return {
        "porter_id": porter_id,
        "org_id": org_id,
        "name": f"陪检员{porter_id[-1]}",
        "kind": kind,
        "zones": zones,
        "skills": list(skills),
    }


async def roster(api: Api, org_id: str, *porters: dict[str, Any]) -> None:
    saved = await api.client.put(
        PORTERS, json=list(porters), headers=staff(api, org_id, Role.ADMIN)
    )
    assert saved.status_code == 200, saved.text


def porter_headers(api: Api, org_id: str, porter_id: str) -> dict[str, str]:
    return staff(api, org_id, Role.NURSE, subject=porter_id)


async def on_duty(
    api: Api, org_id: str, porter_id: str, zone: str | None = WARD_ZONE
) -> dict[str, Any]:
    reply = await api.client.put(
        DUTY, json={"on_duty": True, "zone": zone}, headers=porter_headers(api, org_id, porter_id)
    )
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def escort_body(patient_id: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "patient_id": patient_id,
        "from": {"ward": "5W", "bed": "12", "zone": WARD_ZONE},
        "to": {"department_id": "county1.RAD", "room": "CT-2"},
        "mode": "wheelchair",
        "needs": [],
        "priority": "urgent",
    }
    body.update(changes)
    return body


async def request(api: Api, org_id: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    reply = await api.client.post(T, json=body, headers=staff(api, org_id, Role.NURSE))
    assert reply.status_code == status, reply.text
    return dict(reply.json())


async def read(api: Api, transport_id: str) -> dict[str, Any]:
    reply = await api.client.get(f"{T}/{transport_id}", headers=api.service)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


async def step(
    api: Api, transport_id: str, name: str, headers: dict[str, str], reason: str | None = None
) -> Any:
    body: dict[str, Any] = {"step": name}
    if reason:
        body["reason"] = reason
    return await api.client.post(f"{T}/{transport_id}/steps", json=body, headers=headers)
