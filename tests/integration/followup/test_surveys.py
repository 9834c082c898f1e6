"""Satisfaction surveys: one per visit after a check-in or a discharge, sent with a link,
none for do-not-contact; answered once by the patient's account; results by department
behind the organizations' walls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.notifications.domain.rules import Preferences, send_at
from services.notifications.message_kinds import MessageKinds
from shared.auth import TokenMinter
from shared.handled_events import HANDLED_EVENTS
from shared.principal import Role
from shared.settings import ServiceSettings
from tests.integration.followup.conftest import ORG, PREFIX, FollowupApi, adt
from tests.integration.followup.survey_support import (
    GOOD_ANSWERS,
    check_in,
    followup_app,
    wait_survey,
)
from tests.support.kafka import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
async def followup(
    make_settings: Callable[..., ServiceSettings], minter: TokenMinter
) -> AsyncIterator[FollowupApi]:
    async with followup_app(make_settings, minter) as api:
        yield api


async def sent_survey(followup: FollowupApi, **kwargs: str) -> tuple[dict[str, str], str, str]:
    """A checked-in patient whose survey was sent: (their account's headers, survey id,
    patient id)."""
    patient_id, account_id, _ = await followup.register_patient()
    appointment_id = await check_in(followup, patient_id, account_id, **kwargs)
    survey = await wait_survey(followup, f"appointment:{appointment_id}")
    return followup.token(account_id), survey["_id"], patient_id


def both_handled(followup: FollowupApi) -> Callable[[], Awaitable[bool]]:
    async def handled() -> bool:
        query = {"event_type": "careloop.appointment.checked_in"}
        return await followup.ctx.db[HANDLED_EVENTS].count_documents(query) == 2

    return handled


async def test_a_checked_in_visit_gets_one_survey_even_when_told_twice(
    followup: FollowupApi,
) -> None:
    patient_id, account_id, _ = await followup.register_patient()
    appointment_id = await check_in(followup, patient_id, account_id)
    await check_in(followup, patient_id, account_id, appointment_id=appointment_id)

    survey = await wait_survey(followup, f"appointment:{appointment_id}")
    await wait_until(both_handled(followup), what="both check-ins handled")
    requested = await followup.outbox("careloop.followup.survey.requested")

    assert await followup.ctx.db["surveys"].count_documents({"patient_id": patient_id}) == 1
    assert survey["visit_kind"] == "outpatient"
    assert (survey["org_id"], survey["department_id"], survey["doctor_id"]) == (
        ORG,
        "h1.CARD",
        "dr-wang",
    )
    assert [r["survey_id"] for r in requested] == [survey["_id"]]
    assert requested[0]["link"] == followup.settings.survey_link_base + survey["_id"]
    assert requested[0]["visit_id"] == f"appointment:{appointment_id}"


async def test_a_discharge_gets_one_inpatient_survey_per_stay(followup: FollowupApi) -> None:
    patient_id, _account, national_id = await followup.register_patient()
    when = datetime.now(UTC) - timedelta(days=2)
    message = adt(national_id=national_id, discharged_at=when, visit="V-STAY-1")
    again = adt(national_id=national_id, discharged_at=when, visit="V-STAY-1")
    await followup.mllp(message, again)

    survey = await wait_survey(followup, f"discharge:{ORG}:V-STAY-1")

    assert survey["visit_kind"] == "inpatient"
    assert survey["questionnaire"] == "satisfaction-inpatient"
    assert (survey["department_id"], survey["doctor_id"]) == ("h1.CARD", "h1.doc-1")
    assert await followup.ctx.db["surveys"].count_documents({"patient_id": patient_id}) == 1
    requested = await followup.outbox("careloop.followup.survey.requested")
    assert [(r["survey_id"], r["visit_kind"]) for r in requested] == [(survey["_id"], "inpatient")]


async def test_a_patient_who_asked_not_to_be_contacted_gets_no_survey(
    followup: FollowupApi,
) -> None:
    patient_id, account_id, _ = await followup.register_patient()
    dnc = await followup.client.put(
        f"{PREFIX}/patients/{patient_id}/do-not-contact",
        json={"note": "no messages"},
        headers=followup.token(account_id),
    )
    assert dnc.status_code == 200, dnc.text

    appointment_id = await check_in(followup, patient_id, account_id)
    survey = await wait_survey(followup, f"appointment:{appointment_id}", "suppressed")

    assert survey["suppressed_reason"] == "do_not_contact"
    assert await followup.outbox("careloop.followup.survey.requested") == []


async def test_the_patient_answers_once_and_nobody_else_may(followup: FollowupApi) -> None:
    mine, survey_id, patient_id = await sent_survey(followup)
    url = f"{PREFIX}/surveys/{survey_id}"
    stranger = followup.token("someone-else")

    shown = await followup.client.get(url, headers=mine)
    listed = await followup.client.get(f"{PREFIX}/me/surveys", headers=mine)
    peek = await followup.client.get(url, headers=stranger)
    foreign = await followup.client.post(
        f"{url}/answers", json={"answers": GOOD_ANSWERS}, headers=stranger
    )
    bad = await followup.client.post(
        f"{url}/answers", json={"answers": {"registration": "great"}}, headers=mine
    )
    stored_after_bad = await followup.ctx.db["surveys"].find_one({"_id": survey_id})
    ok = await followup.client.post(f"{url}/answers", json={"answers": GOOD_ANSWERS}, headers=mine)
    twice = await followup.client.post(
        f"{url}/answers", json={"answers": GOOD_ANSWERS}, headers=mine
    )
    listed_after = await followup.client.get(f"{PREFIX}/me/surveys", headers=mine)

    assert shown.status_code == 200, shown.text
    assert shown.json()["questionnaire"]["id"] == "satisfaction-outpatient"
    assert [s["survey_id"] for s in listed.json()["items"]] == [survey_id]
    assert peek.status_code == 403
    assert foreign.status_code == 403
    assert bad.status_code == 422
    assert bad.json()["code"] == "questionnaire_answers_invalid"
    assert {e["linkId"] for e in bad.json()["answer_errors"]} >= {"registration", "doctor"}
    assert stored_after_bad is not None
    assert stored_after_bad["status"] == "sent"
    assert "answers" not in stored_after_bad
    assert ok.status_code == 200, ok.text
    assert (ok.json()["status"], ok.json()["score"], ok.json()["percent"]) == (
        "completed",
        4.0,
        75.0,
    )
    assert twice.status_code == 409
    assert twice.json()["code"] == "survey_already_completed"
    assert listed_after.json()["items"] == []
    completed = await followup.outbox("careloop.followup.survey.completed")
    assert [(c["survey_id"], c["patient_id"], c["score"]) for c in completed] == [
        (survey_id, patient_id, 4.0)
    ]


async def test_an_expired_survey_is_closed(followup: FollowupApi) -> None:
    mine, survey_id, _ = await sent_survey(followup)
    await followup.ctx.db["surveys"].update_one(
        {"_id": survey_id}, {"$set": {"expires_at": datetime.now(UTC) - timedelta(minutes=1)}}
    )

    late = await followup.client.post(
        f"{PREFIX}/surveys/{survey_id}/answers", json={"answers": GOOD_ANSWERS}, headers=mine
    )
    listed = await followup.client.get(f"{PREFIX}/me/surveys", headers=mine)

    assert late.status_code == 409
    assert late.json()["code"] == "survey_expired"
    assert listed.json()["items"] == []


async def test_results_by_department_behind_the_walls(followup: FollowupApi) -> None:
    card, card_id, _ = await sent_survey(followup, department="h1.CARD", doctor="dr-wang")
    await sent_survey(followup, department="h1.CARD", doctor="dr-li")
    await sent_survey(followup, department="h1.NEURO", doctor="dr-zhao")
    await sent_survey(followup, org="h2", department="h2.CARD")
    answered = await followup.client.post(
        f"{PREFIX}/surveys/{card_id}/answers", json={"answers": GOOD_ANSWERS}, headers=card
    )
    assert answered.status_code == 200, answered.text
    url = f"{PREFIX}/surveys/results"

    results = await followup.client.get(url, headers=followup.admin)
    by_doctor = await followup.client.get(
        url, params={"group_by": "doctor"}, headers=followup.token("dr-1", Role.DOCTOR)
    )
    alliance = await followup.client.get(
        url,
        params={"org_id": "h2", "group_by": "org"},
        headers=followup.token("boss", Role.ALLIANCE_ADMIN, org=None),
    )
    alliance_unnamed = await followup.client.get(
        url, headers=followup.token("boss", Role.ALLIANCE_ADMIN, org=None)
    )
    other_admin = await followup.client.get(
        url, params={"org_id": ORG}, headers=followup.token("admin-h2", Role.ADMIN, org="h2")
    )
    patient = await followup.client.get(url, headers=card)
    anonymous = await followup.client.get(url)

    assert results.status_code == 200, results.text
    assert results.json()["groups"] == [
        {
            "group": "h1.CARD",
            "sent": 2,
            "completed": 1,
            "response_rate": 0.5,
            "mean_score": 4.0,
            "percent": 75.0,
        },
        {
            "group": "h1.NEURO",
            "sent": 1,
            "completed": 0,
            "response_rate": 0.0,
            "mean_score": None,
            "percent": None,
        },
    ]
    assert [(g["group"], g["sent"]) for g in by_doctor.json()["groups"]] == [
        ("dr-li", 1),
        ("dr-wang", 1),
        ("dr-zhao", 1),
    ]
    assert [(g["group"], g["sent"]) for g in alliance.json()["groups"]] == [("h2", 1)]
    assert alliance_unnamed.status_code == 422
    assert other_admin.status_code == 403
    assert patient.status_code == 403
    assert anonymous.status_code == 401


def test_notifications_hold_a_survey_sent_in_quiet_hours_rather_than_drop_it() -> None:
    """Why followup asks at the survey's time, night or day: the message kind is not
    urgent and never expires, so notifications holds its push until quiet hours end."""
    kind = MessageKinds.load().get("followup.survey.requested")
    assert kind is not None
    late_evening = datetime(2026, 3, 10, 22, 30, tzinfo=ZoneInfo("Asia/Shanghai"))

    due = send_at(late_evening, urgent=kind.urgent, prefs=Preferences(), timezone="Asia/Shanghai")

    assert (kind.urgent, kind.expires) == (False, "")
    assert due == datetime(2026, 3, 11, 7, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
