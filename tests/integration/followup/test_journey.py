"""Follow-up across followup, appointments and notifications on the embedded stack: a
patient registered in appointments is discharged over MLLP (AA back) and planned; an agent
claims and completes the call; the patient's risky questionnaire answer alerts the doctor
on the phone (and never the patient) and appointments books the revisit from the reserved
pool."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from services.appointments.settings import AppointmentsSettings
from services.notifications.settings import NotificationsSettings
from shared.auth import TokenMinter
from shared.mongo import Document
from shared.settings import ServiceSettings
from tests.factories import make_national_id, make_phone
from tests.integration.followup.conftest import ORG, PREFIX, FollowupApi, adt
from tests.integration.notifications.conftest import running_notifications
from tests.integration.referrals.saga_support import prepare_hospital, running_appointments
from tests.support.kafka import wait_until
from tests.support.patient_codes import add_patient

pytestmark = pytest.mark.integration

RISKY = {
    "chest_pain": True,
    "chest_pain_duration": "over_20_min",
    "breathless": "none",
    "antiplatelet_daily": True,
    "bleeding": False,
    "puncture_swelling": "none",
}
TEMPLATE = {
    "name": "After PCI",
    "org_id": ORG,
    "department_id": f"{ORG}.CARD",
    "icd_prefix": "I21",
    "steps": [
        {"kind": "call", "day": 0, "at": "00:00", "title": "Discharge call"},
        {
            "kind": "questionnaire",
            "day": 0,
            "at": "00:00",
            "title": "Day-7 check",
            "questionnaire_url": "post-pci-day7",
        },
    ],
}


async def test_a_discharge_over_mllp_is_called_and_a_risky_answer_alerts_and_books(
    followup: FollowupApi, make_settings: Callable[..., ServiceSettings], minter: TokenMinter
) -> None:
    notifications_settings = make_settings(
        "notifications", NotificationsSettings, quiet_hours_start="", quiet_hours_end=""
    )
    assert isinstance(notifications_settings, NotificationsSettings)
    async with (
        running_appointments(make_settings("appointments", AppointmentsSettings), minter) as appts,
        running_notifications(notifications_settings, minter) as notifications,
    ):
        await prepare_hospital(appts)  # h1.CARD, doctor D2, a session with reserved numbers
        national_id, doctor_phone = make_national_id(), make_phone()
        added = await add_patient(
            appts.client,
            appts.settings,
            appts.token("acct-journey"),
            {"name": "林晓", "national_id": national_id, "phone": make_phone()},
        )
        assert added.status_code == 201, added.text
        patient_id = added.json()["id"]
        await wait_until(
            lambda: followup.ctx.patients.exists(patient_id), timeout=60, what="followup knowing"
        )
        contact = await notifications.client.put(
            f"/v1/notifications/admin/staff-contacts/{ORG}.D2",
            json={"org_id": ORG, "phone": doctor_phone},
            headers=notifications.service,
        )
        assert contact.status_code == 200, contact.text
        made = await followup.client.post(
            f"{PREFIX}/plan-templates", json=TEMPLATE, headers=followup.admin
        )
        assert made.status_code == 201, made.text

        # the HIS discharges the patient: AA back, a plan of the template, tasks due now
        yesterday = datetime.now(UTC) - timedelta(days=1)
        message = adt(national_id=national_id, doctor="D2", discharged_at=yesterday)
        [ack] = await followup.mllp(message)
        assert "MSA|AA|" in ack
        [plan] = await followup.plans_of(patient_id)
        assert plan["template"]["id"] == made.json()["template_id"]
        call, questionnaire = await followup.tasks_of(plan["_id"])

        # an agent claims the call and completes it
        await followup.wait_task(call["_id"], "due")
        url = f"{PREFIX}/tasks/{call['_id']}"
        claimed = await followup.client.post(f"{url}/claim", headers=followup.agent())
        assert claimed.status_code == 200, claimed.text
        done = await followup.client.post(
            f"{url}/attempts", json={"outcome": "reached"}, headers=followup.agent()
        )
        assert done.json()["status"] == "done", done.text

        # the patient answers the questionnaire: chest pain
        waiting = await followup.wait_task(questionnaire["_id"], "waiting")
        answered = await followup.client.post(
            f"{PREFIX}/questionnaire-responses/{waiting['response_id']}/answers",
            json={"answers": RISKY},
            headers=followup.token("acct-journey"),
        )
        assert answered.status_code == 200, answered.text

        # the doctor is alerted on the phone, the patient is not
        alerts = await notifications.wait_for_sandbox(
            1, timeout=60, kind="followup.risk.flagged", channel="sms"
        )
        assert alerts[0]["patient_id"] is None
        assert "随访高危预警" in alerts[0]["body"]
        assert (
            await notifications.sandbox(kind="followup.risk.flagged", patient_id=patient_id) == []
        )

        # appointments books the revisit from the reserved pool; the flag records it
        async def revisit_booked() -> bool:
            flag = await _flag(followup, waiting["response_id"])
            return flag is not None and (flag.get("revisit") or {}).get("status") == "booked"

        await wait_until(revisit_booked, timeout=60, what="the revisit booked")
        flag = await _flag(followup, waiting["response_id"])
        assert flag is not None
        assert flag["level"] == "urgent"
        assert flag["revisit"]["appointment_id"]
        plan_now = await followup.ctx.plans.get(plan["_id"])
        assert plan_now["risk_level"] == "urgent"


async def _flag(followup: FollowupApi, response_id: str) -> Document | None:
    return await followup.ctx.db["risk_flags"].find_one(
        {"response_id": response_id, "revisit_request_id": {"$type": "string"}}
    )
