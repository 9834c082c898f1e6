"""Questionnaires: a due questionnaire task sends the patient a link, the patient answers
once (their account only; wrong answers write nothing), an agent may take the answers on
the phone, the answers export as FHIR, and admins keep versioned definitions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from shared.principal import Role
from tests.integration.followup.conftest import ORG, PREFIX, FollowupApi, adt

pytestmark = pytest.mark.integration

QUESTIONNAIRE_TEMPLATE: dict[str, Any] = {
    "name": "After PCI: questionnaire",
    "org_id": ORG,
    "department_id": "h1.CARD",
    "icd_prefix": "I21",
    "steps": [
        {
            "kind": "questionnaire",
            "day": 0,
            "title": "Day-7 check",
            "questionnaire_url": "post-pci-day7",
        },
        {"kind": "call", "day": 0, "title": "Day-0 call"},
    ],
}
SAFE = {
    "chest_pain": False,
    "breathless": "none",
    "antiplatelet_daily": True,
    "bleeding": False,
    "puncture_swelling": "none",
}
CHEST_PAIN = {**SAFE, "chest_pain": True, "chest_pain_duration": "over_20_min"}


@dataclass
class Sent:
    patient_id: str
    account_id: str
    plan_id: str
    task: dict[str, Any]
    response_id: str


async def discharge(
    followup: FollowupApi, template: dict[str, Any], days_ago: float = 1
) -> tuple[str, str, str]:
    """A template, and a patient discharged ``days_ago``: (patient, account, plan)."""
    made = await followup.client.post(
        f"{PREFIX}/plan-templates", json=template, headers=followup.admin
    )
    assert made.status_code == 201, made.text
    patient_id, account_id, national_id = await followup.register_patient()
    when = datetime.now(UTC) - timedelta(days=days_ago)
    await followup.mllp(adt(national_id=national_id, discharged_at=when))
    [plan] = await followup.plans_of(patient_id)
    return patient_id, account_id, plan["_id"]


async def sent_questionnaire(
    followup: FollowupApi, template: dict[str, Any] = QUESTIONNAIRE_TEMPLATE, days_ago: float = 1
) -> Sent:
    patient_id, account_id, plan_id = await discharge(followup, template, days_ago)
    first = (await followup.tasks_of(plan_id))[0]
    task = await followup.wait_task(first["_id"], "waiting")
    return Sent(patient_id, account_id, plan_id, task, task["response_id"])


def answers_url(response_id: str) -> str:
    return f"{PREFIX}/questionnaire-responses/{response_id}/answers"


async def test_a_due_questionnaire_is_sent_with_a_link(followup: FollowupApi) -> None:
    sent = await sent_questionnaire(followup)

    [event] = await followup.outbox("careloop.followup.questionnaire.sent")
    assert event["response_id"] == sent.response_id
    assert event["task_id"] == sent.task["_id"]
    assert event["link"] == followup.settings.questionnaire_link_base + sent.response_id
    assert event["questionnaire_id"] == "post-pci-day7"
    assert event["questionnaire_version"] == 1
    assert event["title"] == "冠脉支架术后第7天随访"
    assert event["org_id"] == ORG
    shown = await followup.client.get(
        f"{PREFIX}/questionnaire-responses/{sent.response_id}",
        headers=followup.token(sent.account_id),
    )
    assert shown.status_code == 200, shown.text
    assert shown.json()["status"] == "sent"
    assert shown.json()["definition"]["item"][0]["linkId"] == "chest_pain"


async def test_the_patient_answers_once_and_the_task_is_done(followup: FollowupApi) -> None:
    sent = await sent_questionnaire(followup)
    mine = followup.token(sent.account_id)

    answered = await followup.client.post(
        answers_url(sent.response_id), json={"answers": SAFE}, headers=mine
    )
    again = await followup.client.post(
        answers_url(sent.response_id), json={"answers": SAFE}, headers=mine
    )

    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "completed"
    assert answered.json()["score"] == 0
    assert answered.json()["author"] == {"kind": "patient", "agent_id": None}
    assert again.status_code == 409
    assert again.json()["code"] == "response_already_completed"
    task = await followup.task(sent.task["_id"])
    assert (task["status"], task["outcome"]) == ("done", "answered")
    [completed] = await followup.outbox("careloop.followup.task.completed")
    assert (completed["task_id"], completed["outcome"]) == (sent.task["_id"], "answered")
    assert await followup.outbox("careloop.followup.risk.flagged") == []


async def test_another_account_may_not_see_or_answer(followup: FollowupApi) -> None:
    sent = await sent_questionnaire(followup)
    stranger = followup.token("someone-else")

    shown = await followup.client.get(
        f"{PREFIX}/questionnaire-responses/{sent.response_id}", headers=stranger
    )
    answered = await followup.client.post(
        answers_url(sent.response_id), json={"answers": SAFE}, headers=stranger
    )
    missing = await followup.client.get(f"{PREFIX}/questionnaire-responses/nope", headers=stranger)

    assert shown.status_code == 403
    assert shown.json()["code"] == "forbidden_patient"
    assert answered.status_code == 403
    assert missing.status_code == 404
    response = await followup.ctx.db["questionnaire_responses"].find_one({"_id": sent.response_id})
    assert response is not None
    assert response["status"] == "sent"


async def test_wrong_answers_are_422_and_nothing_is_written(followup: FollowupApi) -> None:
    sent = await sent_questionnaire(followup)
    wrong = {**SAFE, "chest_pain": "yes", "breathless": "sometimes", "extra": 1}

    answered = await followup.client.post(
        answers_url(sent.response_id),
        json={"answers": wrong},
        headers=followup.token(sent.account_id),
    )

    assert answered.status_code == 422
    body = answered.json()
    assert body["code"] == "questionnaire_answers_invalid"
    codes = {e["linkId"]: e["code"] for e in body["answer_errors"]}
    assert codes["chest_pain"] == "wrong_type"
    assert codes["breathless"] == "unknown_option"
    assert codes["extra"] == "unknown_item"
    response = await followup.ctx.db["questionnaire_responses"].find_one({"_id": sent.response_id})
    assert response is not None
    assert response["status"] == "sent"
    assert "answers" not in response
    assert (await followup.task(sent.task["_id"]))["status"] == "waiting"


async def test_the_answers_export_as_a_valid_fhir_questionnaire_response(
    followup: FollowupApi,
) -> None:
    sent = await sent_questionnaire(followup)
    mine = followup.token(sent.account_id)
    url = f"{PREFIX}/questionnaire-responses/{sent.response_id}/fhir"
    early = await followup.client.get(url, headers=mine)
    await followup.client.post(
        answers_url(sent.response_id), json={"answers": CHEST_PAIN}, headers=mine
    )

    staff = await followup.client.get(url, headers=followup.agent())
    own = await followup.client.get(url, headers=mine)
    elsewhere = await followup.client.get(url, headers=followup.agent("agent-9", org="h2"))
    no_reason = await followup.client.get(url, headers=followup.token("agent-1", Role.AGENT))

    assert early.status_code == 409
    assert staff.status_code == 200, staff.text
    resource = QuestionnaireResponse.model_validate(staff.json())
    assert resource.id == sent.response_id
    assert resource.status == "completed"
    assert str(resource.questionnaire).endswith("post-pci-day7|1")
    assert resource.subject is not None
    assert resource.subject.reference == f"Patient/{sent.patient_id}"
    assert own.json() == staff.json()
    assert elsewhere.status_code == 403
    assert no_reason.status_code == 400
    audited = await followup.ctx.db["audit_log"].count_documents(
        {"action": "followup.questionnaire_response.read", "actor_id": "agent-1"}
    )
    assert audited == 1


async def test_an_agent_takes_the_answers_on_the_phone(followup: FollowupApi) -> None:
    template = {
        **QUESTIONNAIRE_TEMPLATE,
        "steps": [
            {
                "kind": "call",
                "day": 0,
                "title": "Day-0 call with the check",
                "questionnaire_url": "post-pci-day7",
            }
        ],
    }
    _patient, _account, plan_id = await discharge(followup, template)
    [task] = await followup.tasks_of(plan_id)
    await followup.wait_task(task["_id"], "due")
    url = f"{PREFIX}/tasks/{task['_id']}"
    claimed = await followup.client.post(f"{url}/claim", headers=followup.agent())
    assert claimed.status_code == 200, claimed.text

    wrong = await followup.client.post(
        f"{url}/attempts",
        json={"outcome": "reached", "answers": {"chest_pain": "no"}},
        headers=followup.agent(),
    )
    assert wrong.status_code == 422
    assert wrong.json()["code"] == "questionnaire_answers_invalid"
    assert await followup.ctx.db["questionnaire_responses"].count_documents({}) == 0
    done = await followup.client.post(
        f"{url}/attempts",
        json={"outcome": "reached", "answers": CHEST_PAIN},
        headers=followup.agent(),
    )

    assert done.status_code == 200, done.text
    assert done.json()["status"] == "done"
    response_id = done.json()["attempts"][0]["response_id"]
    response = await followup.ctx.db["questionnaire_responses"].find_one({"_id": response_id})
    assert response is not None
    assert response["status"] == "completed"
    assert response["author"] == {"kind": "agent", "agent_id": "agent-1"}
    assert response["fhir"]["author"]["reference"] == "Practitioner/agent-1"
    [flag] = await followup.outbox("careloop.followup.risk.flagged")
    assert (flag["rule_id"], flag["urgent"]) == ("chest_pain", True)


async def test_an_unknown_questionnaire_becomes_a_call(followup: FollowupApi) -> None:
    template = {
        **QUESTIONNAIRE_TEMPLATE,
        "steps": [
            {"kind": "questionnaire", "day": 0, "title": "Check", "questionnaire_url": "nope"}
        ],
    }
    _patient, _account, plan_id = await discharge(followup, template)
    [task] = await followup.tasks_of(plan_id)

    due = await followup.wait_task(task["_id"], "due")

    assert due["kind"] == "call"
    assert await followup.outbox("careloop.followup.questionnaire.sent") == []
    listed = await followup.client.get(f"{PREFIX}/call-list", headers=followup.agent())
    assert [t["task_id"] for t in listed.json()["items"]] == [task["_id"]]


MOOD: dict[str, Any] = {
    "resourceType": "Questionnaire",
    "id": "mood-check",
    "title": "心情自评",
    "status": "active",
    "item": [
        {
            "linkId": "mood",
            "text": "今天心情怎么样？",
            "type": "choice",
            "required": True,
            "answerOption": [{"valueCoding": {"code": "good"}}, {"valueCoding": {"code": "low"}}],
        }
    ],
}


async def test_the_alliance_keeps_versioned_definitions(followup: FollowupApi) -> None:
    base = f"{PREFIX}/questionnaires"
    made = await followup.client.post(base, json=MOOD, headers=followup.alliance_admin)
    twice = await followup.client.post(base, json=MOOD, headers=followup.alliance_admin)
    revised = {**MOOD, "title": "心情自评（修订）"}
    no_match = await followup.client.put(
        f"{base}/mood-check", json=revised, headers=followup.alliance_admin
    )
    stale = await followup.client.put(
        f"{base}/mood-check", json=revised, headers={**followup.alliance_admin, "if-match": '"5"'}
    )
    ok = await followup.client.put(
        f"{base}/mood-check", json=revised, headers={**followup.alliance_admin, "if-match": '"1"'}
    )
    unknown = await followup.client.put(
        f"{base}/nope", json=revised, headers={**followup.alliance_admin, "if-match": '"1"'}
    )
    bad = await followup.client.post(
        base,
        json={**MOOD, "id": "bad-one", "item": [{"linkId": "q", "type": "choice"}]},
        headers=followup.alliance_admin,
    )
    by_agent = await followup.client.post(base, json=MOOD, headers=followup.agent())
    by_org_admin = await followup.client.post(base, json=MOOD, headers=followup.admin)

    assert made.status_code == 201, made.text
    assert made.headers["etag"] == '"1"'
    assert twice.status_code == 409
    assert twice.json()["code"] == "questionnaire_exists"
    assert no_match.status_code == 428
    assert stale.status_code == 409
    assert stale.json()["code"] == "version_conflict"
    assert ok.status_code == 200, ok.text
    assert (ok.json()["version"], ok.json()["definition"]["version"]) == (2, 2)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "questionnaire_not_found"
    assert bad.status_code == 422
    assert bad.json()["code"] == "questionnaire_definition_invalid"
    assert bad.json()["definition_errors"][0]["code"] == "choice_without_options"
    assert by_agent.status_code == 403
    assert by_org_admin.status_code == 403  # definitions are the alliance's, not one hospital's
    old = await followup.client.get(
        f"{base}/mood-check", params={"version": 1}, headers=followup.agent()
    )
    latest = await followup.client.get(f"{base}/mood-check", headers=followup.agent())
    assert old.json()["title"] == "心情自评"
    assert latest.headers["etag"] == '"2"'
    fhir = await followup.client.get(f"{base}/post-pci-day7/fhir", headers=followup.agent())
    assert Questionnaire.model_validate(fhir.json()).version == "1"
    listed = await followup.client.get(base, headers=followup.agent())
    keys = {q["key"]: q["version"] for q in listed.json()["items"]}
    assert keys["mood-check"] == 2
    assert {"post-pci-day7", "discharge-general", "satisfaction-inpatient"} <= set(keys)
    missing = await followup.client.get(f"{base}/nope", headers=followup.agent())
    assert missing.status_code == 404


async def test_the_built_ins_are_seeded_once(followup: FollowupApi) -> None:
    catalog = followup.ctx.questionnaires.catalog

    assert await catalog.seed_builtins() == 0
    count = await followup.ctx.db["questionnaires"].count_documents({"key": "post-pci-day7"})
    assert count == 1


async def test_a_questionnaire_is_sent_in_its_latest_active_version(followup: FollowupApi) -> None:
    url = f"{PREFIX}/questionnaires/post-pci-day7"
    current = (await followup.client.get(url, headers=followup.agent())).json()["definition"]
    v2 = {**current, "title": "冠脉支架术后随访（第2版）"}
    v3 = {**current, "title": "草稿", "status": "draft"}
    for body, etag in ((v2, '"1"'), (v3, '"2"')):
        saved = await followup.client.put(
            url, json=body, headers={**followup.alliance_admin, "if-match": etag}
        )
        assert saved.status_code == 200, saved.text

    sent = await sent_questionnaire(followup)

    [event] = await followup.outbox("careloop.followup.questionnaire.sent")
    assert (event["questionnaire_version"], event["title"]) == (2, "冠脉支架术后随访（第2版）")
    answered = await followup.client.post(
        answers_url(sent.response_id),
        json={"answers": SAFE},
        headers=followup.token(sent.account_id),
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["questionnaire_version"] == 2


async def test_an_unanswered_questionnaire_goes_on_the_call_list_and_an_agent_asks_it(
    followup: FollowupApi,
) -> None:
    sent = await sent_questionnaire(followup)
    # the patient has not answered for questionnaire_answer_days: the chase job falls due
    moved = await followup.ctx.db["jobs"].update_one(
        {"key": f"followup-chase:{sent.task['_id']}"}, {"$set": {"due_at": datetime.now(UTC)}}
    )
    assert moved.modified_count == 1

    await followup.wait_task(sent.task["_id"], "due")
    listed = await followup.client.get(f"{PREFIX}/call-list", headers=followup.agent())
    chased = [t for t in listed.json()["items"] if t["task_id"] == sent.task["_id"]]
    assert [t["kind"] for t in chased] == ["questionnaire"]
    url = f"{PREFIX}/tasks/{sent.task['_id']}"
    await followup.client.post(f"{url}/claim", headers=followup.agent())
    done = await followup.client.post(
        f"{url}/attempts", json={"outcome": "reached", "answers": SAFE}, headers=followup.agent()
    )

    assert done.status_code == 200, done.text
    assert done.json()["status"] == "done"
    response = await followup.ctx.db["questionnaire_responses"].find_one({"_id": sent.response_id})
    assert response is not None
    assert response["status"] == "completed"
    late = await followup.client.post(
        answers_url(sent.response_id),
        json={"answers": SAFE},
        headers=followup.token(sent.account_id),
    )
    assert late.status_code == 409


async def test_a_patients_account_lists_the_questionnaires_waiting_for_answers(
    followup: FollowupApi,
) -> None:
    sent = await sent_questionnaire(followup)
    url = f"{PREFIX}/me/questionnaires"

    mine = await followup.client.get(url, headers=followup.token(sent.account_id))
    theirs = await followup.client.get(url, headers=followup.token("someone-else"))

    assert [r["response_id"] for r in mine.json()["items"]] == [sent.response_id]
    assert mine.json()["items"][0]["link"].endswith(sent.response_id)
    assert theirs.json()["items"] == []
    await followup.client.post(
        answers_url(sent.response_id),
        json={"answers": SAFE},
        headers=followup.token(sent.account_id),
    )
    after = await followup.client.get(url, headers=followup.token(sent.account_id))
    assert after.json()["items"] == []
