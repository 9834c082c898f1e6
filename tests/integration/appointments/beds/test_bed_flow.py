"""Bed arrangement end to end: a notice joins the line, candidates are ranked, a bed is
assigned, offered, confirmed, occupied by the HIS's admission, cleaned after discharge;
a declined or lapsed offer goes to the next candidate on its own."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from services.followup.events import AdtReceived
from services.followup.his_events import HisAdmitted, HisDischarge
from shared.events import make_event
from shared.kafka import topic_name
from shared.principal import Role
from tests.integration.appointments.beds.support import (
    B,
    assign,
    bed_status,
    issue,
    my_notices,
    nurse,
    patient,
    publish_his,
    publish_raw,
    setup_beds,
    wait_bed,
)
from tests.integration.appointments.conftest import ORG, Api
from tests.support.kafka import publish_events, read_topic, wait_until

pytestmark = pytest.mark.integration


async def test_notice_candidates_offer_confirm_admit_discharge_clean(
    appointments_api: Api,
) -> None:
    api = appointments_api
    beds = await setup_beds(api)
    bed = beds["W-M/1"]
    alice = await patient(api, "acct-a", "male", "李大")
    bob = await patient(api, "acct-b", "male", "王二")
    carol = await patient(api, "acct-c", "female", "赵三")
    first = await issue(api, alice, "ep-a")
    assert first["status"] == "waiting"
    assert first["position"] == 1
    (mine,) = await my_notices(api, "acct-a")
    assert mine["id"] == first["id"]
    assert mine["position"] == 1
    assert mine["offer"] is None
    urgent = await issue(api, bob, "ep-b", urgency="urgent")
    await issue(api, carol, "ep-c", urgency="emergency")
    assert urgent["position"] == 1  # urgency before waiting time
    (mine,) = await my_notices(api, "acct-a")
    assert mine["position"] == 3  # the department line: emergency, urgent, routine

    # the male ward's bed: Bob (urgent), then Alice; Carol is not admitted there
    reason = {"reason": "bed round"}
    found = await api.client.get(
        f"{B}/beds/candidates", params={"bed_id": bed, **reason}, headers=nurse(api)
    )
    assert found.status_code == 200, found.text
    assert [n["patient_id"] for n in found.json()["patients"]] == [bob, alice]
    fitting = await api.client.get(
        f"{B}/beds/candidates", params={"notice_id": first["id"], **reason}, headers=nurse(api)
    )
    assert fitting.status_code == 200, fitting.text
    fits = {b["id"] for b in fitting.json()["beds"]}
    assert fits == {beds["W-M/1"], beds["W-M/2"], beds["W-ISO/1"]}  # not W-F, not SURG's

    offer = await assign(api, first["id"], bed)
    assert offer["status"] == "offered"
    assert offer["bed"] == "301-1"
    assert await bed_status(api, bed) == "reserved"
    (mine,) = await my_notices(api, "acct-a")
    assert mine["status"] == "offered"
    assert mine["offer"]["id"] == offer["id"]
    stranger = await api.client.post(
        f"{B}/bed-offers/{offer['id']}/confirm", headers=api.token("acct-b")
    )
    assert stranger.status_code == 403, stranger.text
    confirmed = await api.client.post(
        f"{B}/bed-offers/{offer['id']}/confirm", headers=api.token("acct-a")
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "confirmed"

    now = datetime.now(UTC)
    await publish_his(api, HisAdmitted(org_id=ORG, patient_id=alice, admitted_at=now), alice)
    await wait_bed(api, bed, "occupied")
    got = await api.client.get(f"{B}/admission-notices/{first['id']}", headers=api.token("acct-a"))
    assert got.json()["status"] == "admitted"
    assert got.json()["bed_id"] == bed

    discharge = HisDischarge(org_id=ORG, patient_id=alice, discharged_at=datetime.now(UTC))
    await publish_his(api, discharge, alice)
    await wait_bed(api, bed, "cleaning")
    cleaned = await api.client.post(f"{B}/beds/{bed}/cleaned", headers=nurse(api))
    assert cleaned.status_code == 200, cleaned.text
    assert cleaned.json()["status"] == "free"
    again = await api.client.post(f"{B}/beds/{bed}/cleaned", headers=nurse(api))
    assert again.status_code == 409
    assert again.json()["code"] == "bed_not_cleaning"

    location = await api.client.get(f"{B}/fhir/Location/{bed}", headers=nurse(api))
    assert location.status_code == 200, location.text
    assert location.headers["content-type"].startswith("application/fhir+json")
    assert location.json()["resourceType"] == "Location"
    assert location.json()["operationalStatus"]["code"] == "U"

    figures = await api.client.get(f"{B}/beds/figures", params={"org_id": ORG}, headers=api.admin)
    assert figures.status_code == 200, figures.text
    assert figures.json()["admissions"] == 1
    (card,) = [d for d in figures.json()["departments"] if d["department_id"] == f"{ORG}.CARD"]
    assert card["by_urgency"]["routine"]["admissions"] == 1
    assert card["borrowed_beds"] == 0

    topic = topic_name(api.settings, "appointments")
    records = await read_topic(api.settings.kafka_bootstrap, topic, expected=100, timeout=5)
    types = [json.loads(r.value)["type"] for r in records]
    for expected in (
        "careloop.admission_notice.issued",
        "careloop.bed.offered",
        "careloop.bed.offer_confirmed",
        "careloop.bed.status_changed",
    ):
        assert expected in types, types
    offered = next(
        json.loads(r.value)["data"]
        for r in records
        if json.loads(r.value)["type"] == "careloop.bed.offered"
    )
    assert offered["patient_id"] == alice
    assert offered["what_to_bring"]
    assert offered["account_id"] == "acct-a"


async def test_a_declined_then_lapsed_offer_goes_to_the_next_candidate(
    appointments_api: Api,
) -> None:
    api = appointments_api
    beds = await setup_beds(api)
    bed = beds["W-M/1"]
    first = await patient(api, "acct-1", "male", "钱一")
    second = await patient(api, "acct-2", "male", "孙二")
    third = await patient(api, "acct-3", "male", "周三")
    urgent = await issue(api, first, "ep-1", urgency="urgent")
    await issue(api, second, "ep-2")
    await issue(api, third, "ep-3")
    offer = await assign(api, urgent["id"], bed, confirm_in=4)

    # the hotline declines for the first patient: with a reason, audited
    agent = api.token("agent-1", Role.AGENT)
    no_reason = await api.client.post(f"{B}/bed-offers/{offer['id']}/decline", headers=agent)
    assert no_reason.status_code == 400, no_reason.text
    declined = await api.client.post(
        f"{B}/bed-offers/{offer['id']}/decline",
        params={"reason": "患者来电：暂不入院"},
        headers=agent,
    )
    assert declined.status_code == 200, declined.text
    assert declined.json()["status"] == "declined"
    (handed,) = await my_notices(api, "acct-2")
    assert handed["status"] == "offered"
    assert handed["offer"]["bed_id"] == bed
    (back,) = await my_notices(api, "acct-1")
    assert back["status"] == "waiting"
    assert back["offer"] is None
    assert await bed_status(api, bed) == "reserved"

    async def third_offered() -> bool:
        (notice,) = await my_notices(api, "acct-3")
        return notice["status"] == "offered"

    # the second patient does not confirm in time: the third gets the bed
    await wait_until(third_offered, timeout=30, what="the lapsed offer handed on")
    (lapsed,) = await my_notices(api, "acct-2")
    assert lapsed["status"] == "waiting"
    late = await api.client.post(
        f"{B}/bed-offers/{handed['offer']['id']}/confirm", headers=api.token("acct-2")
    )
    assert late.status_code == 409
    assert late.json()["code"] == "offer_expired"
    assert await bed_status(api, bed) == "reserved"


async def test_the_his_names_the_bed_by_its_ward_and_bed_codes(appointments_api: Api) -> None:
    """An admission straight from the HIS (no offer): the named bed is occupied and the
    waiting notice admitted; the discharge names the bed too."""
    api = appointments_api
    beds = await setup_beds(api)
    bed = beds["W-M/2"]
    man = await patient(api, "acct-h", "male")
    notice = await issue(api, man, "ep-h", urgency="emergency")
    admitted = HisAdmitted(org_id=ORG, patient_id=man, admitted_at=datetime.now(UTC))
    extra = {"ward_id": "W-M", "bed_id": "2"}  # optional bed fields of the HIS
    event = {**admitted.model_dump(mode="json"), **extra}
    await publish_raw(api, "careloop.his.admitted", event, man)
    await wait_bed(api, bed, "occupied")
    (seen,) = await my_notices(api, "acct-h")
    assert seen["id"] == notice["id"]
    assert seen["status"] == "admitted"
    assert seen["bed_id"] == bed
    discharged = HisDischarge(org_id=ORG, patient_id=man, discharged_at=datetime.now(UTC))
    await publish_raw(
        api, "careloop.his.discharge", {**discharged.model_dump(mode="json"), **extra}, man
    )
    await wait_bed(api, bed, "cleaning")


async def test_an_hl7_admission_and_discharge_told_by_followup_move_the_bed(
    appointments_api: Api,
) -> None:
    """HL7 reaches the alliance through followup's listener, which tells each accepted A01
    and A03 as followup.adt.received (PV1-3's ward and bed)."""
    api = appointments_api
    beds = await setup_beds(api)
    bed = beds["W-F/1"]
    woman = await patient(api, "acct-hl7", "female")
    await issue(api, woman, "ep-hl7")
    now = datetime.now(UTC)
    for trigger, status in (("A01", "occupied"), ("A03", "cleaning")):
        told = AdtReceived(
            intake_id=f"hl7:HIS|{ORG}:{trigger}-1",
            trigger=trigger,
            org_id=ORG,
            patient_id=woman,
            ward_id=f"{ORG}.W-F",
            room="401",
            bed="1",
            at=now,
        )
        await publish_events(
            api.settings, "followup", [make_event(told, source="followup", subject=woman)]
        )
        await wait_bed(api, bed, status)
    (seen,) = await my_notices(api, "acct-hl7")
    assert seen["status"] == "admitted"
    assert seen["bed_id"] == bed
