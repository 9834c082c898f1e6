"""The commands beside the main path: drafts, routing by hand (audited), hold and resume,
cancellation and entered-in-error, each by the side and role that may give it."""

from __future__ import annotations

import pytest

from services.referrals.bootstrap import built
from shared.principal import Role
from tests.integration.referrals.cases_support import (
    CASES,
    command,
    known_patient,
    referral_body,
    staff,
)
from tests.integration.referrals.conftest import Api, seed_directory

pytestmark = pytest.mark.integration


async def case_of(api: Api, referral_id: str) -> dict[str, object]:
    return dict((await api.client.get(f"{CASES}/{referral_id}", headers=api.service)).json())


async def test_a_draft_is_sent_later_and_a_coordinator_routes_by_hand(referrals: Api) -> None:
    await seed_directory(referrals)
    patient = await known_patient(referrals)
    doctor = staff(referrals, "town1", Role.DOCTOR, "dr-town1")
    draft = await referrals.client.post(
        CASES, json=referral_body(patient, submit=False), headers=doctor
    )
    assert draft.status_code == 201, draft.text
    assert draft.json()["status"] == "draft"
    assert draft.json()["receiving_org_id"] is None
    case_id = draft.json()["referral_id"]
    sent = await command(referrals, case_id, "submit", doctor)
    assert sent.status_code == 200, sent.text
    first = sent.json()["receiving_org_id"]
    other = ({"county1", "county2"} - {first}).pop()

    town_coordinator = staff(referrals, "town1", Role.COORDINATOR, "coord-town1")
    by_doctor = await command(
        referrals, case_id, "route-override", doctor, {"org_id": other, "reason": "患者要求"}
    )
    assert by_doctor.status_code == 403  # coordinators route by hand, not doctors
    no_reason = await command(
        referrals, case_id, "route-override", town_coordinator, {"org_id": other}
    )
    assert no_reason.status_code == 422
    unrelated = await command(
        referrals, case_id, "route-override", town_coordinator, {"org_id": "prov1", "reason": "x"}
    )
    assert unrelated.status_code == 422
    assert unrelated.json()["code"] == "route_not_allowed"
    moved = await command(
        referrals,
        case_id,
        "route-override",
        town_coordinator,
        {"org_id": other, "reason": "患者要求"},
    )
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert body["receiving_org_id"] == other
    assert body["routing"]["routed_by"] == "override"
    assert "患者要求" in body["routing"]["explanation"]
    audit = built(referrals.app.state.runtime).audit
    records = await audit.query(action="referral.override_route")
    assert [r.reason for r in records] == ["患者要求"]
    assert records[0].patient_id == patient


async def test_hold_resume_cancel_and_entered_in_error(referrals: Api) -> None:
    await seed_directory(referrals)
    patient = await known_patient(referrals)
    doctor = staff(referrals, "town1", Role.DOCTOR, "dr-town1")
    case = (await referrals.client.post(CASES, json=referral_body(patient), headers=doctor)).json()
    case_id, receiver = case["referral_id"], case["receiving_org_id"]
    coordinator = staff(referrals, receiver)
    held = await command(referrals, case_id, "hold", coordinator, {"reason": "等待补充检查"})
    assert held.status_code == 200, held.text
    assert (held.json()["status"], held.json()["sla_seconds_left"]) == ("on-hold", None)
    nurse = staff(referrals, receiver, Role.NURSE)
    assert (await command(referrals, case_id, "resume", nurse)).status_code == 403
    resumed = await command(referrals, case_id, "resume", coordinator)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "requested"
    assert resumed.json()["sla_seconds_left"] > 0  # the receiver's clock runs again

    by_receiver = await command(referrals, case_id, "cancel", coordinator, {"reason": "x"})
    assert by_receiver.status_code == 403  # only the sender withdraws a referral
    no_reason = await command(referrals, case_id, "cancel", doctor)
    assert no_reason.status_code == 422
    assert no_reason.json()["code"] == "reason_required"
    cancelled = await command(referrals, case_id, "cancel", doctor, {"reason": "患者已自行就医"})
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    again = await command(referrals, case_id, "cancel", doctor, {"reason": "again"})
    assert again.status_code == 409

    second = (
        await referrals.client.post(
            CASES, json=referral_body(patient, episode_id=case["episode_id"]), headers=doctor
        )
    ).json()  # the episode is free again once the first case ended
    wrong = await command(
        referrals, second["referral_id"], "entered-in-error", doctor, {"reason": "录错患者"}
    )
    assert wrong.status_code == 200
    final = await case_of(referrals, second["referral_id"])
    assert final["status"] == "entered-in-error"
    assert [h["action"] for h in final["history"]][-1] == "mark_entered_in_error"  # type: ignore[index]


async def test_staff_are_told_what_waits_for_them(referrals: Api) -> None:
    await seed_directory(referrals)
    patient = await known_patient(referrals)
    doctor = staff(referrals, "town1", Role.DOCTOR, "dr-town1")
    case = (await referrals.client.post(CASES, json=referral_body(patient), headers=doctor)).json()
    case_id, receiver = case["referral_id"], case["receiving_org_id"]
    desk = staff(referrals, receiver)
    waiting = (await referrals.client.get("/v1/referrals/notices", headers=desk)).json()["items"]
    assert [(n["kind"], n["referral_id"]) for n in waiting] == [("new_referral", case_id)]
    # another organization's desk and the referring doctor have nothing of it yet
    other = staff(referrals, ({"county1", "county2"} - {receiver}).pop())
    assert (await referrals.client.get("/v1/referrals/notices", headers=other)).json()[
        "items"
    ] == []
    assert (await referrals.client.get("/v1/referrals/notices", headers=doctor)).json()[
        "items"
    ] == []

    await command(
        referrals, case_id, "accept", desk, {"department_id": f"{receiver}.CARD", "book": False}
    )
    noted = await command(
        referrals, case_id, "notes", staff(referrals, receiver, Role.DOCTOR), {"text": "已收治"}
    )
    assert noted.status_code == 200
    mine = (await referrals.client.get("/v1/referrals/notices", headers=doctor)).json()["items"]
    assert [n["kind"] for n in mine] == ["interim_note"]
    stranger = staff(referrals, "town1", Role.DOCTOR, "dr-other")
    marked = await referrals.client.post(
        "/v1/referrals/notices/read", json={"ids": [mine[0]["id"]]}, headers=stranger
    )
    assert marked.json()["marked"] == 0  # another doctor's notice is not theirs to mark
    marked = await referrals.client.post(
        "/v1/referrals/notices/read", json={"ids": [mine[0]["id"]]}, headers=doctor
    )
    assert marked.json()["marked"] == 1
    unread = await referrals.client.get(
        "/v1/referrals/notices", headers=doctor, params={"unread": "true"}
    )
    assert unread.json()["items"] == []
