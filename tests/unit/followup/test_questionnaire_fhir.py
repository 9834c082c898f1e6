"""Questionnaires as FHIR: a QuestionnaireResponse of the answers, a Questionnaire of the
definition, both validated by fhir.resources."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from services.followup.domain.questionnaire import QuestionnaireDefinition, parse_definition
from services.followup.domain.questionnaire_answers import ValidatedAnswers, validate_answers
from services.followup.fhir import canonical, questionnaire_resource, questionnaire_response
from services.followup.questionnaire_library import load_all, load_builtin

pytestmark = pytest.mark.unit

AUTHORED = datetime(2026, 3, 17, 10, 30, tzinfo=UTC)
PCI_OK = {
    "chest_pain": False,
    "breathless": "on_exertion",
    "antiplatelet_daily": True,
    "bleeding": False,
    "puncture_swelling": "mild",
}


def export(
    definition: QuestionnaireDefinition, checked: ValidatedAnswers, **more: Any
) -> dict[str, Any]:
    options: dict[str, Any] = {"author_kind": "patient", **more}
    return questionnaire_response(
        definition,
        checked,
        response_id="resp-1",
        patient_id="pat-1",
        authored=AUTHORED,
        **options,
    )


def by_link(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["linkId"]: i for i in items}


def test_pci_response_round_trips_with_typed_answers() -> None:
    pci = load_builtin("post-pci-day7")
    body = export(pci, validate_answers(pci, PCI_OK))
    parsed = QuestionnaireResponse.model_validate(body)
    assert parsed.status == "completed"
    assert body["questionnaire"] == "https://careloop.example/fhir/Questionnaire/post-pci-day7|1"
    assert body["subject"]["reference"] == "Patient/pat-1"
    assert body["author"]["reference"] == "Patient/pat-1"
    assert body["authored"].startswith("2026-03-17T10:30:00")
    items = by_link(body["item"])
    assert "chest_pain_duration" not in items  # disabled: absent
    assert items["chest_pain"]["answer"] == [{"valueBoolean": False}]
    assert items["breathless"]["answer"] == [
        {"valueCoding": {"code": "on_exertion", "display": "活动后气短"}}
    ]
    assert items["total"]["answer"] == [{"valueInteger": 2}]
    assert list(items) == [
        "chest_pain", "breathless", "antiplatelet_daily", "bleeding", "puncture_swelling", "total"
    ]  # fmt: skip


def test_an_enabled_follow_up_question_is_exported() -> None:
    pci = load_builtin("post-pci-day7")
    answers = {**PCI_OK, "chest_pain": True, "chest_pain_duration": "over_20_min"}
    body = export(pci, validate_answers(pci, answers), author_kind="agent", agent_id="staff-9")
    items = by_link(body["item"])
    assert items["chest_pain_duration"]["answer"][0]["valueCoding"]["code"] == "over_20_min"
    assert body["author"]["reference"] == "Practitioner/staff-9"
    assert body["source"]["reference"] == "Patient/pat-1"
    anonymous = export(pci, validate_answers(pci, PCI_OK), author_kind="agent")
    assert anonymous["author"] == {"display": "CareLoop follow-up agent"}


def test_groups_nest_and_the_mean_is_a_decimal() -> None:
    survey = load_builtin("satisfaction-outpatient")
    answers = {
        "registration": "neutral",
        "doctor": "very_satisfied",
        "environment": "neutral",
        "overall": "satisfied",
    }
    body = export(survey, validate_answers(survey, answers), status="in-progress")
    QuestionnaireResponse.model_validate(body)
    items = by_link(body["item"])
    assert set(items) == {"ratings", "total"}  # no comment given
    ratings = by_link(items["ratings"]["item"])
    assert list(ratings) == ["registration", "doctor", "environment", "overall"]
    coding = ratings["doctor"]["answer"][0]["valueCoding"]
    assert coding["system"] == "https://careloop.example/fhir/CodeSystem/satisfaction-5"
    assert items["total"]["answer"] == [{"valueDecimal": 3.75}]


def test_every_value_type() -> None:
    found = parse_definition(
        {
            "resourceType": "Questionnaire",
            "id": "types",
            "version": 2,
            "title": "Types",
            "item": [
                {"linkId": "i", "type": "integer"},
                {"linkId": "d", "type": "decimal"},
                {"linkId": "day", "type": "date"},
                {"linkId": "at", "type": "dateTime"},
                {"linkId": "s", "type": "string"},
                {"linkId": "t", "type": "text"},
                {
                    "linkId": "c",
                    "type": "choice",
                    "repeats": True,
                    "answerOption": [{"valueString": "甲"}, {"valueInteger": 7}],
                },
            ],
        }
    )
    checked = validate_answers(
        found,
        {
            "i": 3,
            "d": 0.1,
            "day": "2026-03-01",
            "at": "2026-03-01T08:00:00+08:00",
            "s": "x",
            "t": "long",
            "c": ["甲", 7],
        },
    )
    body = export(found, checked)
    QuestionnaireResponse.model_validate(body)
    assert body["questionnaire"] == canonical(found)
    assert canonical(found) == "https://careloop.example/fhir/Questionnaire/types|2"
    answers = {k: v["answer"] for k, v in by_link(body["item"]).items()}
    assert answers == {
        "i": [{"valueInteger": 3}],
        "d": [{"valueDecimal": 0.1}],
        "day": [{"valueDate": "2026-03-01"}],
        "at": [{"valueDateTime": "2026-03-01T08:00:00+08:00"}],
        "s": [{"valueString": "x"}],
        "t": [{"valueString": "long"}],
        "c": [{"valueString": "甲"}, {"valueInteger": 7}],
    }


def test_the_export_refuses_mismatches() -> None:
    pci = load_builtin("post-pci-day7")
    checked = validate_answers(pci, PCI_OK)
    with pytest.raises(ValueError, match="another questionnaire version"):
        export(pci, checked.model_copy(update={"version": 2}))
    with pytest.raises(ValueError, match="status"):
        export(pci, checked, status="done")


def test_each_definition_is_a_valid_fhir_questionnaire_that_reloads() -> None:
    for found in load_all().values():
        resource = questionnaire_resource(found)
        Questionnaire.model_validate(resource)
        assert resource["version"] == "1"
        assert parse_definition(resource) == found.model_copy(update={"risk_rules": []})
    pci = questionnaire_resource(load_builtin("post-pci-day7"))
    total = by_link(pci["item"])["total"]
    assert total["readOnly"] is True
    assert total["extension"][0]["valueExpression"]["expression"] == "%ordinals.sum()"
    assert pci["_title"]["extension"][0]["url"] == (
        "http://hl7.org/fhir/StructureDefinition/translation"
    )
