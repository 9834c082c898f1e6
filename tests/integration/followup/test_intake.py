"""Intake from the HIS: HL7 v2 ADT over MLLP and HTTP, JSON on careloop.his, and completed
downward referrals all become discharges and plans; duplicates, malformed messages,
unknown patients and readmissions are handled as the hospital expects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.followup.domain.plan_template import StepKind
from services.referrals.events import ReferralCompleted
from shared.events import Envelope, make_event
from shared.ids import new_id
from tests.factories import make_national_id
from tests.integration.followup.conftest import ORG, PREFIX, FollowupApi, adt
from tests.support.kafka import wait_until

pytestmark = pytest.mark.integration


def msa(ack: str) -> list[str]:
    segment = next(s for s in ack.split("\r") if s.startswith("MSA|"))
    return segment.split("|")


async def test_an_a03_over_mllp_is_acked_aa_and_planned_with_tasks_in_local_time(
    followup: FollowupApi,
) -> None:
    patient_id, _account, national_id = await followup.register_patient()
    discharged = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    message = adt(control_id="CTRL-1", national_id=national_id, discharged_at=discharged)

    [ack] = await followup.mllp(message)

    assert msa(ack)[1:3] == ["AA", "CTRL-1"]
    [plan] = await followup.plans_of(patient_id)
    assert plan["org_id"] == ORG
    assert plan["department_id"] == "h1.CARD"
    assert plan["doctor_id"] == "h1.doc-1"
    assert plan["template"]["id"] == "default"
    [task] = await followup.tasks_of(plan["_id"])
    # the default plan: a call on day 7 at 10:00 hospital time
    assert task["kind"] == StepKind.CALL
    assert task["due_at"].replace(tzinfo=UTC) == datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    [created] = await followup.outbox("careloop.followup.plan.created")
    assert created["plan_id"] == plan["_id"]
    assert created["diagnosis_code"] == "I21.9"
    [discharge] = await followup.ctx.db["discharges"].find().to_list(None)
    assert discharge["match_status"] == "matched"
    assert "national_id" not in discharge
    assert discharge["national_id_masked"].startswith(national_id[:3])
    assert national_id not in str(discharge)


async def test_a_duplicate_control_id_is_acked_again_and_not_planned_twice(
    followup: FollowupApi,
) -> None:
    patient_id, _account, national_id = await followup.register_patient()
    message = adt(control_id="DUP-1", national_id=national_id)

    first, again = await followup.mllp(message, message)
    [over_http] = [
        await followup.client.post(f"{PREFIX}/his/adt", content=message, headers=followup.service)
    ]

    assert first == again == over_http.text
    assert msa(first)[1] == "AA"
    assert len(await followup.plans_of(patient_id)) == 1
    stored = await followup.ctx.db["intake_messages"].find_one({"control_id": "DUP-1"})
    assert stored is not None
    assert stored["repeats"] == 2


async def test_a_malformed_message_gets_ar_and_is_kept_for_review_with_audited_raw_text(
    followup: FollowupApi,
) -> None:
    broken = "PID|1||123^^^H1^MR\rPV1|1|I\r"  # no MSH

    [ack] = await followup.mllp(broken)

    assert msa(ack)[1] == "AR"
    assert "MSH" in msa(ack)[3]
    listed = await followup.client.get(
        f"{PREFIX}/intake/messages", params={"outcome": "malformed"}, headers=followup.service
    )
    [kept] = listed.json()["items"]
    assert kept["ack_code"] == "AR"
    assert "raw" not in kept
    no_reason = await followup.client.get(
        f"{PREFIX}/intake/messages/{kept['message_id']}", headers=followup.token("patient-1")
    )
    assert no_reason.status_code == 403
    read = await followup.client.get(
        f"{PREFIX}/intake/messages/{kept['message_id']}",
        headers={**followup.service, "x-access-reason": "HIS interface fault"},
    )
    assert read.status_code == 200
    assert read.json()["raw"] == broken
    audited = await followup.ctx.audit.query(action="followup.intake.read_raw")
    assert [a.reason for a in audited] == ["HIS interface fault"]


async def test_over_http_an_a03_answers_the_ack_and_a_malformed_one_a_422_with_the_nak(
    followup: FollowupApi,
) -> None:
    patient_id, _account, national_id = await followup.register_patient()
    ok = await followup.client.post(
        f"{PREFIX}/his/adt", content=adt(national_id=national_id), headers=followup.service
    )
    bad = await followup.client.post(
        f"{PREFIX}/his/adt", content="MSH|^~\\&|HIS\rPID|1\r", headers=followup.service
    )
    patient = await followup.client.post(
        f"{PREFIX}/his/adt", content=adt(national_id=national_id), headers=followup.token("p")
    )

    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("x-application/hl7")
    assert msa(ok.text)[1] == "AA"
    assert len(await followup.plans_of(patient_id)) == 1
    assert bad.status_code == 422
    problem = bad.json()
    assert problem["code"] == "hl7_rejected"
    assert msa(problem["ack"])[1] == "AR"
    assert patient.status_code == 403


async def test_an_admit_is_acked_and_not_planned_and_a_readmission_ends_the_plan(
    followup: FollowupApi,
) -> None:
    patient_id, _account, national_id = await followup.register_patient()
    await followup.mllp(adt(national_id=national_id))
    [plan] = await followup.plans_of(patient_id)

    [ack] = await followup.mllp(adt("A01", national_id=national_id))

    assert msa(ack)[1] == "AA"
    [ended] = await followup.plans_of(patient_id)
    assert ended["_id"] == plan["_id"]
    assert ended["status"] == "ended"
    told = await followup.outbox("careloop.followup.adt.received")
    assert [(t["trigger"], t["patient_id"]) for t in told] == [
        ("A03", patient_id),
        ("A01", patient_id),
    ]
    assert (told[0]["ward_id"], told[0]["room"], told[0]["bed"]) == ("h1.CARD", "301", "2")
    assert ended["end_reason"] == "readmitted"
    tasks = await followup.tasks_of(plan["_id"])
    assert {t["status"] for t in tasks} == {"cancelled"}


async def test_a_death_on_discharge_plans_nothing(followup: FollowupApi) -> None:
    patient_id, _account, national_id = await followup.register_patient()

    [ack] = await followup.mllp(adt(national_id=national_id, disposition="20"))

    assert msa(ack)[1] == "AA"
    assert await followup.plans_of(patient_id) == []


async def test_an_unknown_patient_waits_for_a_match_then_registering_plans_them(
    followup: FollowupApi,
) -> None:
    national_id = make_national_id()
    [ack] = await followup.mllp(adt(national_id=national_id))
    assert msa(ack)[1] == "AA"
    waiting = await followup.client.get(f"{PREFIX}/discharges/unmatched", headers=followup.agent())
    [item] = waiting.json()["items"]
    assert item["match_status"] == "awaiting_match"
    assert item["patient_id"] is None
    assert national_id not in waiting.text

    patient_id, _account, _id = await followup.register_patient(national_id)

    await wait_until(
        lambda: _has_plan(followup, patient_id), timeout=30, what="the plan after registering"
    )


async def _has_plan(followup: FollowupApi, patient_id: str) -> bool:
    return len(await followup.plans_of(patient_id)) == 1


async def test_staff_match_a_discharge_only_to_the_patient_with_its_national_id(
    followup: FollowupApi,
) -> None:
    stranger, _a, _n = await followup.register_patient()
    await followup.mllp(adt(national_id=make_national_id()))
    [item] = (
        await followup.client.get(f"{PREFIX}/discharges/unmatched", headers=followup.agent())
    ).json()["items"]
    url = f"{PREFIX}/discharges/{item['discharge_id']}/match"

    wrong = await followup.client.post(url, json={"patient_id": stranger}, headers=followup.agent())
    other_org = await followup.client.post(
        url, json={"patient_id": stranger}, headers=followup.agent("agent-9", org="h2")
    )

    assert wrong.status_code == 409
    assert wrong.json()["code"] == "identity_mismatch"
    assert other_org.status_code == 403
    assert await followup.plans_of(stranger) == []


async def test_a_json_discharge_on_careloop_his_is_planned(followup: FollowupApi) -> None:
    patient_id, _account, national_id = await followup.register_patient()
    data = {
        "visit_id": "V-JSON-1",
        "org_id": ORG,
        "department_id": "CARD",
        "national_id": national_id,
        "discharged_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
        "diagnosis_codes": ["I25.1"],
    }
    event = Envelope(
        type="careloop.his.discharge",
        source="his",
        subject=new_id(),
        dataschema="careloop.his.discharge/1",
        data=data,
    )
    await followup.publish(event, "his")

    await wait_until(lambda: _has_plan(followup, patient_id), timeout=30, what="the plan")
    [plan] = await followup.plans_of(patient_id)
    assert plan["source_id"] == f"{ORG}:V-JSON-1"


async def test_a_completed_downward_referral_starts_a_plan_at_the_receiving_center(
    followup: FollowupApi,
) -> None:
    patient_id, _account, _n = await followup.register_patient()
    facts = {
        "patient_id": patient_id,
        "urgency": "routine",
        "status": "completed",
        "business_status": "summary_sent",
        "sending_org_id": "prov1",
        "specialty": "rehabilitation",
        "diagnosis_code": "I63.9",
        "case_version": 5,
        "diagnosis": "脑梗死",
        "treatment": "溶栓",
        "recommendations": "康复训练",
        "follow_up_advice": "两周后社区复查",
        "completed_at": datetime.now(UTC),
    }
    down = ReferralCompleted(
        referral_id=new_id(), direction="downward", receiving_org_id="town1", **facts
    )
    up = ReferralCompleted(
        referral_id=new_id(), direction="upward", receiving_org_id="prov1", **facts
    )
    for payload in (up, down):
        await followup.publish(
            make_event(payload, source="referrals", subject=patient_id), "referrals"
        )

    await wait_until(lambda: _has_plan(followup, patient_id), timeout=30, what="the plan")
    [plan] = await followup.plans_of(patient_id)
    assert plan["org_id"] == "town1"
    assert plan["source"] == "referral"
    assert plan["source_id"] == down.referral_id
    assert plan["note"] == "两周后社区复查"


async def test_a_json_discharge_that_breaks_the_contract_is_kept_as_malformed(
    followup: FollowupApi,
) -> None:
    national_id = make_national_id()
    data = {"org_id": ORG, "national_id": national_id, "discharged_at": "yesterday"}
    event = Envelope(
        type="careloop.his.discharge",
        source="his",
        subject=new_id(),
        dataschema="careloop.his.discharge/1",
        data=data,
    )
    await followup.publish(event, "his")

    async def kept() -> bool:
        found = await followup.ctx.db["intake_messages"].find_one({"_id": f"json:{event.id}"})
        return found is not None

    await wait_until(kept, timeout=30, what="the malformed event kept")
    stored = await followup.ctx.db["intake_messages"].find_one({"_id": f"json:{event.id}"})
    assert stored is not None
    assert stored["outcome"] == "malformed"
    assert stored["reason"] == "invalid fields: discharged_at"
    assert national_id not in str(stored)  # the text is kept encrypted
    assert await followup.ctx.db["discharges"].count_documents({}) == 0
