"""Wards, beds and patients of a known sex for the bed-arrangement tests.

Organization ``h1``: departments CARD (心内科) and SURG (外科); wards ``W-M`` (CARD,
male), ``W-F`` (CARD, female), ``W-ISO`` (CARD, mixed, isolation) and ``W-S`` (SURG,
mixed); one standard bed ``1`` per ward, and a monitored bed ``2`` in ``W-M``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.events import Envelope, make_event
from shared.principal import Role
from shared.privacy import sex_of
from tests.factories import make_national_id, make_phone
from tests.integration.appointments.conftest import ORG, Api
from tests.support.kafka import publish_events, wait_until
from tests.support.patient_codes import add_patient

B = "/v1/appointments"
WARDS = [
    {"code": "W-M", "department_code": "CARD", "gender_policy": "male"},
    {"code": "W-F", "department_code": "CARD", "gender_policy": "female"},
    {"code": "W-ISO", "department_code": "CARD", "isolation": True},
    {"code": "W-S", "department_code": "SURG"},
]
BEDS = [
    {"ward_code": "W-M", "code": "1", "room": "301"},
    {"ward_code": "W-M", "code": "2", "room": "302", "kind": "monitored"},
    {"ward_code": "W-F", "code": "1", "room": "401"},
    {"ward_code": "W-ISO", "code": "1", "room": "501"},
    {"ward_code": "W-S", "code": "1", "room": "601"},
]


def doctor(api: Api, org: str = ORG) -> dict[str, str]:
    return api.token("doctor-1", Role.DOCTOR, org=org)


def nurse(api: Api, org: str = ORG) -> dict[str, str]:
    return api.token("nurse-1", Role.NURSE, org=org)


def service(api: Api) -> dict[str, str]:
    return api.token("his", Role.SERVICE, org=None)


async def setup_beds(api: Api) -> dict[str, str]:
    """The wards and beds above; returns the bed ids by ``<ward>/<bed>``."""
    deps = [{"org_id": ORG, "code": "SURG", "name": "外科"}]
    saved = await api.client.put(f"{B}/admin/departments", json=deps, headers=api.admin)
    assert saved.status_code == 200, saved.text
    wards = [{"org_id": ORG, "name": f"病区 {w['code']}", "floor": 3, **w} for w in WARDS]
    saved = await api.client.put(f"{B}/admin/wards", json=wards, headers=service(api))
    assert saved.status_code == 200, saved.text
    beds = [{"org_id": ORG, **b} for b in BEDS]
    saved = await api.client.put(f"{B}/admin/beds", json=beds, headers=service(api))
    assert saved.status_code == 200, saved.text
    ids = saved.json()["ids"]
    return {f"{b['ward_code']}/{b['code']}": i for b, i in zip(BEDS, ids, strict=True)}


async def patient(api: Api, account: str, sex: str, name: str = "张三") -> str:
    national_id = make_national_id()
    while sex_of(national_id) != sex:
        national_id = make_national_id()
    body = {"name": name, "national_id": national_id, "phone": make_phone()}
    response = await add_patient(api.client, api.settings, api.token(account), body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def notice_body(patient_id: str, episode: str, **extra: Any) -> dict[str, Any]:
    return {
        "patient_id": patient_id,
        "episode_id": episode,
        "department_code": "CARD",
        "diagnosis": {"code": "I21.0", "text": "急性心肌梗死"},
        "urgency": "routine",
        "expected_days": 7,
        **extra,
    }


async def issue(api: Api, patient_id: str, episode: str, **extra: Any) -> dict[str, Any]:
    response = await api.client.post(
        f"{B}/admission-notices",
        json=notice_body(patient_id, episode, **extra),
        headers=doctor(api),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def assign_body(bed_id: str, *, confirm_in: float | None = None) -> dict[str, Any]:
    now = datetime.now(UTC)
    body = {
        "bed_id": bed_id,
        "come_at": (now + timedelta(days=1)).isoformat(),
        "what_to_bring": "身份证、医保卡、住院证",
    }
    if confirm_in is not None:
        body["confirm_by"] = (now + timedelta(seconds=confirm_in)).isoformat()
    return body


async def assign(
    api: Api, notice_id: str, bed_id: str, *, confirm_in: float | None = None
) -> dict[str, Any]:
    response = await api.client.post(
        f"{B}/admission-notices/{notice_id}/assign",
        json=assign_body(bed_id, confirm_in=confirm_in),
        headers=nurse(api),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def bed_status(api: Api, bed_id: str) -> str:
    page = await api.client.get(f"{B}/beds", params={"org_id": ORG}, headers=nurse(api))
    assert page.status_code == 200, page.text
    return str(next(b for b in page.json()["items"] if b["id"] == bed_id)["status"])


async def my_notices(api: Api, account: str) -> list[dict[str, Any]]:
    page = await api.client.get(f"{B}/me/admission-notices", headers=api.token(account))
    assert page.status_code == 200, page.text
    return list(page.json()["items"])


async def wait_bed(api: Api, bed_id: str, status: str, timeout: float = 30) -> None:
    async def reached() -> bool:
        return await bed_status(api, bed_id) == status

    await wait_until(reached, timeout=timeout, what=f"bed {bed_id} {status}")


async def publish_his(api: Api, payload: Any, subject: str) -> None:
    await publish_events(api.settings, "his", [make_event(payload, source="his", subject=subject)])


async def publish_raw(api: Api, event_type: str, data: dict[str, Any], subject: str) -> None:
    """A HIS event with fields its payload model does not know (read tolerantly)."""
    event = Envelope(
        type=event_type, source="his", subject=subject, dataschema=f"{event_type}/1", data=data
    )
    await publish_events(api.settings, "his", [event])
