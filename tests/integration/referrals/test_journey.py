"""The whole loop of an upward referral across referrals, appointments and notifications on
the embedded stack: submission, routing, acceptance, a visit booked from the referral pool,
the patient told, check-in, an interim note, completion with the summary, closure; then the
downward referral back to the community center, whose completion reaches follow-up."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from services.appointments.settings import AppointmentsSettings
from services.notifications.settings import NotificationsSettings
from services.notifications.store import MESSAGES
from services.referrals.settings import ReferralsSettings
from shared.auth import TokenMinter
from shared.principal import Role
from shared.settings import ServiceSettings
from tests.integration.appointments.conftest import ORG
from tests.integration.notifications.conftest import running_notifications
from tests.integration.referrals.cases_support import CASES, command, referral_body, staff
from tests.integration.referrals.conftest import running_referrals
from tests.integration.referrals.saga_support import (
    TOWN,
    case_of,
    prepare_hospital,
    running_appointments,
    seed_alliance,
)
from tests.support.kafka import read_topic, wait_until

pytestmark = pytest.mark.integration


async def test_an_upward_referral_closes_its_loop_and_the_downward_one_reaches_follow_up(
    make_settings: Callable[..., ServiceSettings], minter: TokenMinter
) -> None:
    notifications_settings = make_settings(
        "notifications", NotificationsSettings, quiet_hours_start="", quiet_hours_end=""
    )
    assert isinstance(notifications_settings, NotificationsSettings)
    async with (
        running_appointments(make_settings("appointments", AppointmentsSettings), minter) as appts,
        running_referrals(make_settings("referrals", ReferralsSettings), minter) as referrals,
        running_notifications(notifications_settings, minter) as notifications,
    ):
        visit_day = await prepare_hospital(appts)
        await seed_alliance(referrals)
        patient = (await appts.add_patient("acct-journey", "林晓"))["id"]

        # the town doctor refers up; the referral pool of h1 is known to the router
        async def referable() -> bool:
            body = referral_body(patient, preferred_date=visit_day)
            sent = await referrals.client.post(
                CASES, json=body, headers=staff(referrals, TOWN, Role.DOCTOR, "dr-town")
            )
            referable.case = sent.json() if sent.status_code == 201 else None  # type: ignore[attr-defined]
            return sent.status_code == 201

        await wait_until(referable, timeout=60, what="referrals knowing the patient")
        case = referable.case  # type: ignore[attr-defined]
        referral_id = case["referral_id"]
        assert case["receiving_org_id"] == ORG
        coordinator = staff(referrals, ORG, Role.COORDINATOR, "coord-h1")

        async def pool_seen() -> bool:
            incoming = await referrals.client.get(
                "/v1/referrals/worklists/incoming", headers=coordinator
            )
            items = incoming.json()["items"]
            return any(i["referral_id"] == referral_id for i in items)

        await wait_until(pool_seen, timeout=30, what="the case in h1's incoming worklist")

        accepted = await command(
            referrals, referral_id, "accept", coordinator, {"department_id": f"{ORG}.CARD"}
        )
        assert accepted.status_code == 200, accepted.text

        async def booked() -> bool:
            return bool((await case_of(referrals, referral_id))["business_status"] == "booked")

        await wait_until(booked, timeout=60, what="the visit booked from the referral pool")
        case = await case_of(referrals, referral_id)
        assert case["status"] == "in-progress"
        appointment_id = case["booking"]["appointment_id"]
        appointment = (
            await appts.client.get(
                f"/v1/appointments/appointments/{appointment_id}",
                headers=appts.token("nurse-h1", Role.NURSE),
                params={"reason": "referral journey"},
            )
        ).json()
        assert appointment["referral_id"] == referral_id
        assert appointment["clinic_date"] == visit_day

        messages = notifications.app.state.runtime.db[MESSAGES]

        async def told() -> bool:
            query = {"patient_id": patient, "kind": "appointment.booked"}
            return bool(await messages.count_documents(query) > 0)

        await wait_until(told, timeout=60, what="the patient told of the visit")

        checked_in = await appts.client.post(
            f"/v1/appointments/appointments/{appointment_id}/check-in",
            headers=appts.token("nurse-h1", Role.NURSE),
        )
        assert checked_in.status_code == 200, checked_in.text

        async def arrived() -> bool:
            return bool((await case_of(referrals, referral_id))["business_status"] == "arrived")

        await wait_until(arrived, timeout=60, what="the case showing the patient arrived")
        doctor = staff(referrals, ORG, Role.DOCTOR, "dr-card")
        for text in ("冠脉造影已安排", "造影示前降支狭窄 80%，已植入支架"):
            noted = await command(referrals, referral_id, "notes", doctor, {"text": text})
            assert noted.status_code == 200, noted.text
        summary = {
            "diagnosis": "不稳定型心绞痛，前降支狭窄",
            "treatment": "PCI 植入支架 1 枚",
            "recommendations": "双联抗血小板 12 个月",
            "follow_up_advice": "1 个月后社区复查血脂、肝功能",
        }
        done = await command(referrals, referral_id, "complete", doctor, {"summary": summary})
        assert done.status_code == 200, done.text
        closed = done.json()
        assert closed["status"] == "completed"
        assert closed["business_status"] == "summary_sent"
        assert [n["text"] for n in closed["notes"]][-1].startswith("造影")
        # the referring doctor reads the summary on the outgoing list and the case
        outgoing = await referrals.client.get(
            "/v1/referrals/worklists/outgoing",
            headers=staff(referrals, TOWN, Role.DOCTOR, "dr-town"),
            params={"mine": "true", "status": "completed"},
        )
        assert [i["referral_id"] for i in outgoing.json()["items"]] == [referral_id]

        # and back down: the community center takes the patient into follow-up
        down = await referrals.client.post(
            CASES,
            json=referral_body(
                patient, direction="downward", specialty="rehabilitation", urgency="routine"
            ),
            headers=doctor,
        )
        assert down.status_code == 201, down.text
        down_id = down.json()["referral_id"]
        assert down.json()["receiving_org_id"] == TOWN
        town = staff(referrals, TOWN, Role.COORDINATOR, "coord-town")
        taken = await command(
            referrals, down_id, "accept", town, {"department_id": f"{TOWN}.REHAB"}
        )
        assert taken.status_code == 200, taken.text
        assert taken.json()["business_status"] == "accepted"  # no visit to book
        handed = await command(referrals, down_id, "complete", town, {"summary": summary})
        assert handed.status_code == 200, handed.text

        settings = referrals.settings
        records = await read_topic(
            settings.kafka_bootstrap, f"{settings.kafka_topic_prefix}.referrals", expected=11
        )
        events = [json.loads(r.value) for r in records]
        completed = [e for e in events if e["type"] == "careloop.referral.completed"]
        downward = next(e["data"] for e in completed if e["data"]["direction"] == "downward")
        assert downward["receiving_org_id"] == TOWN
        assert downward["follow_up_advice"] == summary["follow_up_advice"]
        assert downward["patient_id"] == patient
        kinds = [e["type"] for e in events if e["data"]["referral_id"] == referral_id]
        assert kinds == [
            "careloop.referral.submitted",
            "careloop.referral.routed",
            "careloop.referral.accepted",
            "careloop.referral.scheduled",
            "careloop.referral.note_added",
            "careloop.referral.note_added",
            "careloop.referral.completed",
        ]
