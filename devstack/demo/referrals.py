"""Demo data: referrals (see devstack/demo/__init__.py).

The clinic's doctor refers three patients up to the hospital this morning, one of each
urgency, with the patients' consent: the hospital's referral desk finds them in its
incoming worklist, nearest deadline first. Their ids: ``demo.extra["referrals"]`` (a dict
by urgency).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog

from devstack.demo.base import Demo, bearer, ok, staff_token
from devstack.keys import DevSecrets

log = structlog.get_logger(__name__)

# (urgency, ICD-10, diagnosis, reason, specialty, chief complaint)
CASES = (
    (
        "emergency",
        "I21.9",
        "急性心肌梗死",
        "持续胸痛2小时，心电图ST段抬高，需急诊PCI",
        "cardiology",
        "胸骨后压榨样疼痛2小时",
    ),
    (
        "urgent",
        "I20.0",
        "不稳定型心绞痛",
        "反复胸痛，需冠脉造影评估",
        "cardiology",
        "活动后胸痛3天",
    ),
    (
        "routine",
        "M17.1",
        "膝关节骨关节炎",
        "保守治疗效果差，评估关节置换",
        "orthopedics",
        "右膝疼痛1年，加重1月",
    ),
)
PATIENT_WAIT_SECONDS = 30  # referrals learns the patients from appointments' events


def _body(demo: Demo, n: int, case: tuple[str, ...], patient_id: str) -> dict[str, Any]:
    urgency, code, text, reason, specialty, complaint = case
    return {
        "patient_id": patient_id,
        "episode_id": f"{demo.clinic}-enc-{n + 1}",
        "direction": "upward",
        "urgency": urgency,
        "diagnosis": {"code": code, "text": text},
        "reason": reason,
        "specialty": specialty,
        "clinical": {"chief_complaint": complaint},
        "consent": {
            "given": True,
            "method": "signature",
            "recorded_at": datetime.now(UTC).isoformat(),
        },
    }


async def _refer(gw: httpx.AsyncClient, doctor: dict[str, str], body: dict[str, Any]) -> Any:
    """POST the referral; a patient referrals has not learnt of yet is retried a while."""
    loop = asyncio.get_running_loop()
    until = loop.time() + PATIENT_WAIT_SECONDS
    while True:
        answer = await gw.post("/v1/referrals/cases", headers=doctor, json=body)
        unknown = answer.status_code == 422 and answer.json().get("code") == "unknown_patient"
        if not unknown or loop.time() > until:
            return ok(answer, 201)
        await asyncio.sleep(0.3)


async def seed_referrals(gw: httpx.AsyncClient, secrets: DevSecrets, demo: Demo) -> None:
    """Three upward referrals from the clinic's doctor to the hospital: emergency, urgent,
    routine (the first three demo patients). No preferred date: appointments books the first
    session with a free referral number (tomorrow's may have gone back to the public pool)."""
    doctor = bearer(await staff_token(gw, demo.usernames["cdoctor"]))
    made: dict[str, str] = {}
    for n, case in enumerate(CASES):
        patient_id = demo.patients[n]["id"]
        created = await _refer(gw, doctor, _body(demo, n, case, patient_id))
        made[case[0]] = created["referral_id"]
        log.info(
            "demo.referral",
            urgency=case[0],
            referral_id=created["referral_id"],
            receiving_org_id=created["receiving_org_id"],
        )
    demo.extra["referrals"] = made
