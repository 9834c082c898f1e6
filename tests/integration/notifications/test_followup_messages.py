"""Follow-up's messages: ``careloop.followup`` events become the patient's questionnaire and
survey links, and an urgent risk flag alerts the responsible doctor (inbox, then the
doctor's phone by SMS/voice) and never the patient."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from services.followup.events import QuestionnaireSent, RiskFlagged, SurveyRequested
from services.notifications.message_kinds import MessageKindError, MessageKinds
from services.notifications.settings import NotificationsSettings
from shared.auth import TokenMinter
from shared.events import Envelope, EventPayload, make_event
from shared.ids import new_id
from shared.kafka import ensure_topics, topic_name
from shared.principal import Role
from shared.privacy import mask_phone
from tests.factories import make_phone
from tests.integration.notifications.conftest import ORG, NotificationsApi, running_notifications
from tests.support.kafka import publish_events, wait_until

RISK = "followup.risk.flagged"
QUESTIONNAIRE_LINK = "https://f.careloop.cn/q/"
SURVEY_LINK = "https://f.careloop.cn/s/"


@pytest.fixture
async def api(
    notifications_settings: Callable[..., NotificationsSettings], minter: TokenMinter
) -> AsyncIterator[NotificationsApi]:
    settings = notifications_settings()  # quiet hours off
    await ensure_topics(
        settings.kafka_bootstrap,
        [topic_name(settings, "followup")],
        partitions=settings.kafka_partitions,
    )
    async with running_notifications(settings, minter) as running:
        yield running


def followup_event(payload: EventPayload) -> Envelope:
    return make_event(payload, source="followup", subject=payload.model_dump()["patient_id"])


def plan(patient_id: str, doctor_id: str | None = None) -> dict[str, Any]:
    return {
        "plan_id": new_id(),
        "patient_id": patient_id,
        "org_id": ORG,
        "department_id": "h1.CARD",
        "doctor_id": doctor_id or f"dr-{new_id()[-8:]}",
    }


def questionnaire(patient_id: str) -> Envelope:
    return followup_event(
        QuestionnaireSent(
            **plan(patient_id),
            task_id=new_id(),
            response_id=new_id(),
            questionnaire_id="q-heart-failure",
            questionnaire_version=2,
            title="心衰出院后随访问卷",
            link=QUESTIONNAIRE_LINK + new_id()[-8:],
            due_at=datetime.now(UTC) + timedelta(days=3),
        )
    )


def survey(patient_id: str) -> Envelope:
    return followup_event(
        SurveyRequested(
            survey_id=new_id(),
            patient_id=patient_id,
            org_id=ORG,
            department_id="h1.CARD",
            doctor_id="dr-wang",
            visit_kind="inpatient",
            visit_id=new_id(),
            link=SURVEY_LINK + new_id()[-8:],
        )
    )


def risk(patient_id: str, doctor_id: str, *, urgent: bool = True) -> Envelope:
    return followup_event(
        RiskFlagged(
            **plan(patient_id, doctor_id),
            flag_id=new_id(),
            response_id=new_id(),
            rule_id="hf-weight-gain",
            level="urgent" if urgent else "moderate",
            urgent=urgent,
            reason="3天内体重增加2公斤以上",
            revisit=urgent,
        )
    )


async def put_contact(api: NotificationsApi, staff_id: str, phone: str) -> None:
    body = {"org_id": ORG, "phone": phone}
    url = f"/v1/notifications/admin/staff-contacts/{staff_id}"
    response = await api.client.put(url, json=body, headers=api.service)
    assert response.status_code == 200, response.text


async def inbox(api: NotificationsApi, account_id: str, *roles: Role) -> list[dict[str, Any]]:
    response = await api.client.get(
        "/v1/notifications/inbox", headers=api.token(account_id, *roles)
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_questionnaire_and_survey_links_reach_the_patient(api: NotificationsApi) -> None:
    patient_id, account_id, phone = await api.register_patient()
    bound = await api.client.put(  # as the gateway does after WeChat's code2session
        f"/v1/notifications/accounts/{account_id}/wechat",
        json={"openid": f"oWx{account_id[-12:]}"},
        headers=api.service,
    )
    assert bound.status_code == 200, bound.text
    consent = await api.client.post(  # the questionnaire's template only
        "/v1/notifications/me/wechat/consents",
        json={"results": {"followup.questionnaire.sent": "accept"}},
        headers=api.token(account_id),
    )
    assert consent.status_code == 200, consent.text
    asked, surveyed = questionnaire(patient_id), survey(patient_id)
    await publish_events(api.settings, "followup", [asked, surveyed])

    wechat = await api.wait_for_sandbox(1, patient_id=patient_id, channel="wechat")
    sms = await api.wait_for_sandbox(1, patient_id=patient_id, channel="sms")
    assert [w["kind"] for w in wechat] == ["followup.questionnaire.sent"]
    assert wechat[0]["fields"]["thing1"] == "心衰出院后随访问卷"
    assert wechat[0]["page"].startswith("pages/followup/questionnaire?id=")
    assert [s["kind"] for s in sms] == ["followup.survey.requested"]  # no consent: SMS
    assert sms[0]["address_masked"] == mask_phone(phone)
    assert surveyed.data["link"] in sms[0]["body"]
    assert "住院" in sms[0]["body"]
    assert phone not in sms[0]["body"]

    items = {i["kind"]: i for i in await inbox(api, account_id)}
    assert set(items) == {"followup.questionnaire.sent", "followup.survey.requested"}
    assert asked.data["link"] in items["followup.questionnaire.sent"]["body"]
    assert surveyed.data["link"] in items["followup.survey.requested"]["body"]
    assert all(i["patient_id"] == patient_id for i in items.values())


async def test_a_patient_who_turned_sms_off_gets_the_survey_in_the_inbox_only(
    api: NotificationsApi,
) -> None:
    patient_id, account_id, _ = await api.register_patient()
    url = f"/v1/notifications/patients/{patient_id}/preferences"
    turned_off = await api.client.patch(
        url, json={"channels": {"sms": False}}, headers=api.token(account_id)
    )
    assert turned_off.status_code == 200, turned_off.text
    surveyed = survey(patient_id)
    await publish_events(api.settings, "followup", [surveyed])
    msgs = await api.wait_for_messages(3, source_id=surveyed.id)
    assert {m["channel"]: (m["status"], m["reason"]) for m in msgs} == {
        "inbox": ("delivered", None),
        "wechat": ("suppressed", "no_address"),
        "sms": ("suppressed", "channel_off"),  # surveys are not mandatory
    }


async def test_an_urgent_risk_flag_alerts_the_doctor_and_never_the_patient(
    api: NotificationsApi,
) -> None:
    patient_id, account_id, patient_phone = await api.register_patient()
    doctor_id, doctor_phone = f"dr-{new_id()[-10:]}", make_phone()
    await put_contact(api, doctor_id, doctor_phone)
    flagged = risk(patient_id, doctor_id)
    await publish_events(api.settings, "followup", [flagged])

    msgs = await api.wait_for_messages(2, source_id=flagged.id)
    sent = await api.wait_for_sandbox(1, message_id={"$in": [m["_id"] for m in msgs]})
    assert [(s["kind"], s["channel"]) for s in sent] == [(RISK, "sms")]
    assert sent[0]["address_masked"] == mask_phone(doctor_phone)
    assert sent[0]["patient_id"] is None
    body = sent[0]["body"]
    assert body.startswith("【CareLoop】随访高危预警（紧急）")
    assert "3天内体重增加2公斤以上" in body
    assert flagged.data["plan_id"] in body
    assert patient_phone not in body
    assert doctor_phone not in body

    msgs = await api.messages(source_id=flagged.id)
    assert {m["channel"]: m["status"] for m in msgs} == {"inbox": "delivered", "sms": "delivered"}
    assert {(m["account_id"], m["patient_id"]) for m in msgs} == {(doctor_id, None)}
    assert msgs[-1]["chain"] == ["sms", "voice"]  # a failed SMS falls back to a call

    doctors = await inbox(api, doctor_id, Role.DOCTOR)
    assert [i["kind"] for i in doctors] == [RISK]
    assert "3天内体重增加2公斤以上" in doctors[0]["body"]
    assert flagged.data["patient_id"] in doctors[0]["body"]
    assert doctors[0]["patient_id"] is None
    assert await inbox(api, account_id) == []  # the patient's account: nothing
    assert await api.sandbox(patient_id=patient_id) == []
    assert await api.messages(patient_id=patient_id) == []
    assert await api.messages(account_id=account_id) == []


async def test_a_risk_flag_that_is_not_urgent_sends_nothing(api: NotificationsApi) -> None:
    patient_id, _, _ = await api.register_patient()
    doctor_id = f"dr-{new_id()[-10:]}"
    await put_contact(api, doctor_id, make_phone())
    quiet, marker = risk(patient_id, doctor_id, urgent=False), risk(patient_id, doctor_id)
    # one patient, one partition: the marker's alert shows the first event was handled
    await publish_events(api.settings, "followup", [quiet, marker])
    await api.wait_for_messages(2, source_id=marker.id)
    assert await api.messages(source_id=quiet.id) == []
    assert [i["kind"] for i in await inbox(api, doctor_id, Role.DOCTOR)] == [RISK]


async def test_without_a_staff_contact_the_alert_lands_in_the_inbox_only(
    api: NotificationsApi,
) -> None:
    patient_id, _, patient_phone = await api.register_patient()
    doctor_id = f"dr-{new_id()[-10:]}"
    flagged = risk(patient_id, doctor_id)
    with structlog.testing.capture_logs() as logs:
        await publish_events(api.settings, "followup", [flagged])
        msgs = await api.wait_for_messages(3, source_id=flagged.id)
    assert {m["channel"]: (m["status"], m["reason"]) for m in msgs} == {
        "inbox": ("delivered", None),
        "sms": ("suppressed", "no_address"),
        "voice": ("suppressed", "no_address"),
    }
    assert {m["account_id"] for m in msgs} == {doctor_id}
    missing = [e for e in logs if e["event"] == "notification.staff_contact_missing"]
    assert [e["staff_id"] for e in missing] == [doctor_id]
    assert patient_phone not in str(missing)
    assert [i["kind"] for i in await inbox(api, doctor_id, Role.DOCTOR)] == [RISK]

    async def nothing_sent() -> bool:  # give a wrongly queued send time to show up
        return await api.sandbox(patient_id=patient_id) == []

    await wait_until(nothing_sent, timeout=5, what="no delivery for the patient")
    assert await api.sandbox(message_id={"$in": [m["_id"] for m in msgs]}) == []


STAFF_KIND = """
kind = "x.alert"
event = "careloop.x.alert"
audience = "staff"
staff_field = "doctor_id"
push = ["sms"]
[templates.zh-CN.inbox]
title = "t"
body = "b"
[templates.zh-CN.sms]
body = "b"
[templates.en.inbox]
title = "t"
body = "b"
[templates.en.sms]
body = "b"
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (STAFF_KIND.replace('staff_field = "doctor_id"\n', ""), "needs staff_field"),
        ("to_address = true\n" + STAFF_KIND, "cannot be to_address"),
        (STAFF_KIND.replace('"staff"', '"nurses"'), "audience must be one of"),
        (STAFF_KIND.replace('audience = "staff"\n', ""), "staff_field is for"),
    ],
)
def test_malformed_staff_kinds_are_refused(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "ok.toml").write_text(STAFF_KIND, encoding="utf-8")
    assert MessageKinds.load(tmp_path).kinds["x.alert"].for_staff
    (tmp_path / "ok.toml").unlink()
    (tmp_path / "x.toml").write_text(text, encoding="utf-8")
    with pytest.raises(MessageKindError, match=message):
        MessageKinds.load(tmp_path)


def test_the_risk_kind_is_a_staff_kind_for_urgent_flags_only() -> None:
    kinds = MessageKinds.load()
    alert = kinds.kinds[RISK]
    assert (alert.audience, alert.staff_field, alert.urgent, alert.mandatory) == (
        "staff",
        "doctor_id",
        True,
        True,
    )
    data = dict(alert.sample)
    assert kinds.for_event("careloop.followup.risk.flagged", data) is alert
    assert kinds.for_event("careloop.followup.risk.flagged", {**data, "urgent": False}) is None
