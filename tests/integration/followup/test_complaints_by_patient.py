"""One patient's complaints for the staff of the organization (the console's patient page):
the list filtered by ``patient_id``, behind the same walls, with a reason, audited with the
patient named."""

from __future__ import annotations

from typing import Any

import pytest

from shared.ids import new_id
from shared.principal import Role
from tests.integration.followup.conftest import ORG, PREFIX, FollowupApi

pytestmark = pytest.mark.integration

COMPLAINTS = f"{PREFIX}/complaints"
BODY: dict[str, Any] = {"category": "waiting_registration", "description": "候诊时间过长"}


async def test_staff_list_one_patients_complaints_with_a_reason(followup: FollowupApi) -> None:
    patient_id, other_patient = new_id(), new_id()
    mine = await followup.client.post(
        COMPLAINTS, json={**BODY, "patient_id": patient_id}, headers=followup.agent()
    )
    assert mine.status_code == 201, mine.text
    others = await followup.client.post(
        COMPLAINTS, json={**BODY, "patient_id": other_patient}, headers=followup.agent()
    )
    assert others.status_code == 201, others.text
    no_patient = await followup.client.post(COMPLAINTS, json=BODY, headers=followup.agent())
    assert no_patient.status_code == 201, no_patient.text

    listed = await followup.client.get(
        COMPLAINTS, params={"patient_id": patient_id}, headers=followup.agent("agent-2")
    )
    assert listed.status_code == 200, listed.text
    assert [c["complaint_id"] for c in listed.json()["items"]] == [mine.json()["complaint_id"]]
    assert listed.json()["items"][0]["patient_id"] == patient_id
    everything = await followup.client.get(COMPLAINTS, headers=followup.agent("agent-2"))
    assert len(everything.json()["items"]) == 3

    no_reason = await followup.client.get(
        COMPLAINTS,
        params={"patient_id": patient_id},
        headers=followup.token("agent-2", Role.AGENT),
    )
    assert no_reason.status_code == 400
    assert no_reason.json()["code"] == "reason_required"
    elsewhere = await followup.client.get(
        COMPLAINTS, params={"patient_id": patient_id}, headers=followup.agent("agent-9", org="h2")
    )
    assert elsewhere.status_code == 200
    assert elsewhere.json()["items"] == []
    foreign_org = await followup.client.get(
        COMPLAINTS,
        params={"patient_id": patient_id, "org_id": ORG},
        headers=followup.agent("agent-9", org="h2"),
    )
    assert foreign_org.status_code == 403
    patient = await followup.client.get(
        COMPLAINTS, params={"patient_id": patient_id}, headers=followup.token("acct-1")
    )
    assert patient.status_code == 403

    audited = await followup.ctx.audit.query(action="followup.complaint.list", actor_id="agent-2")
    named = [a for a in audited if a.patient_id == patient_id]
    assert len(named) == 1
    assert named[0].reason == "follow-up call"
