"""What the referral case tests share: a known patient, a referral body, and commands."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from services.appointments.events import PatientRegistered
from services.referrals.bootstrap import built
from shared.events import make_event
from shared.ids import new_id
from shared.principal import Role
from tests.integration.referrals.conftest import Api
from tests.support.kafka import publish_events, wait_until

CASES = "/v1/referrals/cases"


async def known_patient(
    api: Api, account_id: str | None = None, *, no_account: bool = False
) -> str:
    """A real-name patient of appointments, as referrals learns of one: ``patient.registered``
    on the appointments topic, read by the referrals consumer. ``no_account``: registered
    by hotline staff, managed by no account (``account_id`` null)."""
    patient_id = new_id()
    payload = PatientRegistered(
        patient_id=patient_id,
        account_id=None if no_account else account_id or new_id(),
        relation="self",
        phone_enc="not-read-by-referrals",
        phone_masked="138****0000",
    )
    event = make_event(payload, source="appointments", subject=patient_id)
    await publish_events(api.settings, "appointments", [event])
    patients = built(api.app.state.runtime).patients

    async def known() -> bool:
        return await patients.exists(patient_id)

    await wait_until(known, timeout=30, what="referrals knowing the patient")
    return patient_id


def referral_body(patient_id: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "patient_id": patient_id,
        "episode_id": f"enc-{new_id()[-8:]}",
        "direction": "upward",
        "urgency": "urgent",
        "diagnosis": {"code": "I20.0", "text": "不稳定型心绞痛"},
        "reason": "反复胸痛，需冠脉造影评估",
        "specialty": "cardiology",
        "clinical": {"chief_complaint": "胸痛3天", "medications": ["阿司匹林"]},
        "documents": [
            {
                "kind": "ecg",
                "title": "心电图",
                "uri": "his://town1/ecg/123",
                "content_type": "application/pdf",
            }
        ],
        "consent": {
            "given": True,
            "method": "signature",
            "recorded_at": datetime.now(UTC).isoformat(),
        },
    }
    body.update(changes)
    return body


def staff(
    api: Api, org: str, role: Role = Role.COORDINATOR, subject: str | None = None
) -> dict[str, str]:
    return api.token(subject or f"{role.value}-{org}", role, org=org)


async def command(
    api: Api,
    referral_id: str,
    name: str,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
    *,
    version: int | None = None,
) -> httpx.Response:
    """POST a transition with If-Match (the version read now, unless given)."""
    if version is None:
        current = await api.client.get(f"{CASES}/{referral_id}", headers=api.service)
        assert current.status_code == 200, current.text
        version = int(current.json()["version"])
    return await api.client.post(
        f"{CASES}/{referral_id}/{name}",
        json=body if body is not None else {},
        headers={**headers, "If-Match": f'"{version}"'},
    )
