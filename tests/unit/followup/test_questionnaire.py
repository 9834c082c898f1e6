"""Questionnaire definitions and answer sets: FHIR JSON in, checked and scored answers out."""

from __future__ import annotations

from typing import Any

import pytest

from services.followup.domain.questionnaire import (
    DefinitionInvalid,
    QuestionnaireDefinition,
    parse_definition,
)
from services.followup.domain.questionnaire_answers import (
    AnswersInvalid,
    satisfaction_percent,
    satisfaction_score,
    validate_answers,
)
from services.followup.questionnaire_library import BUILT_IN, load_all, load_builtin
from shared.domain_errors import Invalid
from shared.domain_problems import to_problem

pytestmark = pytest.mark.unit

ORD = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
CALC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
PCI_OK = {
    "chest_pain": False,
    "breathless": "none",
    "antiplatelet_daily": True,
    "bleeding": False,
    "puncture_swelling": "none",
}


def option(code: str, ordinal: float | None = None) -> dict[str, Any]:
    opt: dict[str, Any] = {"valueCoding": {"code": code, "display": code}}
    if ordinal is not None:
        opt["extension"] = [{"url": ORD, "valueDecimal": ordinal}]
    return opt


def definition(*items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Questionnaire", "id": "t", "title": "T", "item": list(items), **extra}


def total(expression: str = "%ordinals.sum()", kind: str = "integer") -> dict[str, Any]:
    return {
        "linkId": "total",
        "type": kind,
        "readOnly": True,
        "extension": [{"url": CALC, "valueExpression": {"expression": expression}}],
    }


MIXED = definition(
    {
        "linkId": "a",
        "type": "choice",
        "required": True,
        "answerOption": [option("x", 1), option("y", 4)],
    },
    {
        "linkId": "b",
        "type": "choice",
        "repeats": True,
        "answerOption": [option("p", 2), option("q", 3), option("r")],
    },
    {
        "linkId": "n",
        "type": "integer",
        "extension": [
            {"url": "http://hl7.org/fhir/StructureDefinition/minValue", "valueInteger": 0},
            {"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueInteger": 10},
        ],
    },
    {"linkId": "d", "type": "decimal"},
    {"linkId": "day", "type": "date"},
    {"linkId": "at", "type": "dateTime"},
    {"linkId": "s", "type": "string", "maxLength": 5},
    {"linkId": "info", "type": "display", "text": "note"},
    {
        "linkId": "g",
        "type": "group",
        "enableWhen": [{"question": "a", "operator": "=", "answerCoding": {"code": "y"}}],
        "item": [{"linkId": "g1", "type": "boolean", "required": True}],
    },
    total(),
)


def mixed() -> QuestionnaireDefinition:
    return parse_definition(MIXED)


def codes(error: AnswersInvalid) -> dict[str, str]:
    return {e.linkId: e.code for e in error.errors}


# --- the library -------------------------------------------------------------------------


def test_the_library_loads_every_built_in() -> None:
    library = load_all()
    assert set(library) == set(BUILT_IN)
    for key, found in library.items():
        assert found.id == key
        assert found.status == "active"
        assert found.key == f"https://careloop.example/fhir/Questionnaire/{key}"
    assert load_builtin("post-pci-day7") is library["post-pci-day7"]
    with pytest.raises(KeyError):
        load_builtin("nope")


def test_pci_ordinals_and_score_item_are_normalized() -> None:
    pci = load_builtin("post-pci-day7")
    items = pci.items_by_id()
    assert [o.ordinal for o in items["breathless"].answerOption or []] == [0, 1, 3]
    assert items["chest_pain"].text_en
    assert pci.score_item is items["total"]
    assert items["total"].calculated is not None
    assert items["total"].calculated.method == "sum"
    assert not items["total"].answerable


def test_a_stored_definition_reloads_as_is() -> None:
    for found in load_all().values():
        stored = found.model_dump(mode="json", exclude_none=True)
        assert parse_definition(stored) == found


def test_fhir_forms_are_accepted() -> None:
    loaded = parse_definition(
        definition(
            {
                "linkId": "q",
                "text": "问题",
                "_text": {
                    "extension": [
                        {
                            "url": "http://hl7.org/fhir/StructureDefinition/translation",
                            "extension": [
                                {"url": "lang", "valueCode": "en"},
                                {"url": "content", "valueString": "Question"},
                            ],
                        }
                    ]
                },
                "type": "choice",
                "answerOption": [{"valueString": "A"}, {"valueInteger": 2}],
                "extension": [{"url": "http://example.org/itemControl", "valueCode": "radio"}],
            },
            total("%ordinals('q').mean()", "decimal"),
            version="3",
            url="http://example.org/Questionnaire/t",
        )
    )
    assert loaded.version == 3
    q = loaded.items_by_id()["q"]
    assert q.text_en == "Question"
    assert [o.key for o in q.answerOption or []] == ["A", "2"]
    assert q.extension is not None
    assert q.extension[0].url == "http://example.org/itemControl"
    calc = loaded.items_by_id()["total"].calculated
    assert calc is not None
    assert (calc.method, calc.of) == ("mean", ["q"])


def boolean(link_id: str, **more: Any) -> dict[str, Any]:
    return {"linkId": link_id, "type": "boolean", **more}


@pytest.mark.parametrize(
    ("data", "code", "path"),
    [
        (
            definition(boolean("a"), {"linkId": "g", "type": "group", "item": [boolean("a")]}),
            "duplicate_link_id",
            "item[1].item[0]",
        ),
        (
            definition(
                boolean(
                    "a",
                    enableWhen=[{"question": "zz", "operator": "exists", "answerBoolean": True}],
                )
            ),
            "enable_when_unknown_question",
            "item[0]",
        ),
        (
            definition(
                boolean(
                    "a", enableWhen=[{"question": "b", "operator": "=", "answerBoolean": True}]
                ),
                boolean("b"),
            ),
            "enable_when_unknown_question",
            "item[0]",
        ),
        (
            definition(
                boolean("a"),
                boolean("b", enableWhen=[{"question": "a", "operator": "=", "answerString": "x"}]),
            ),
            "enable_when_type_mismatch",
            "item[1]",
        ),
        (
            definition(
                boolean("a"),
                boolean(
                    "b", enableWhen=[{"question": "a", "operator": ">", "answerBoolean": True}]
                ),
            ),
            "enable_when_type_mismatch",
            "item[1]",
        ),
        (
            definition(
                {"linkId": "c", "type": "choice", "answerOption": [option("x")]},
                boolean(
                    "b",
                    enableWhen=[
                        {"question": "c", "operator": "=", "answerCoding": {"code": "nope"}}
                    ],
                ),
            ),
            "enable_when_unknown_option",
            "item[1]",
        ),
        (
            definition(
                boolean("a"),
                boolean("b"),
                boolean(
                    "c",
                    enableWhen=[
                        {"question": "a", "operator": "exists", "answerBoolean": True},
                        {"question": "b", "operator": "exists", "answerBoolean": True},
                    ],
                ),
            ),
            "enable_behavior_missing",
            "item[2]",
        ),
        (definition({"linkId": "c", "type": "choice"}), "choice_without_options", "item[0]"),
        (definition(boolean("a", answerOption=[option("x")])), "options_on_non_choice", "item[0]"),
        (
            definition(
                {"linkId": "c", "type": "choice", "answerOption": [option("x"), option("x")]}
            ),
            "duplicate_option",
            "item[0]",
        ),
        (definition({"linkId": "g", "type": "group"}), "group_without_items", "item[0]"),
        (definition(boolean("a", item=[boolean("b")])), "items_outside_group", "item[0]"),
        (definition(boolean("a", repeats=True)), "repeats_unsupported", "item[0]"),
        (definition(boolean("a", maxLength=3)), "max_length_on_non_string", "item[0]"),
        (
            definition({"linkId": "s", "type": "string", "min_value": 1}),
            "bound_type_mismatch",
            "item[0]",
        ),
        (definition(total(), {**total(), "linkId": "total2"}), "multiple_scores", "item[1]"),
        (definition(total(kind="string")), "score_not_numeric", "item[0]"),
        (definition(total("%ordinals('zz').sum()")), "score_unknown_item", "item[0]"),
        (definition(total("%answers.count()")), "unsupported_expression", "item[0]"),
        (definition({"linkId": "x", "type": "quantity"}), "literal_error", "item[0].type"),
        (definition(boolean("a", colour="red")), "extra_forbidden", "item[0].colour"),
        (
            {"resourceType": "Questionnaire", "title": "T", "item": [boolean("a")]},
            "missing_key",
            "",
        ),
        (
            definition(
                boolean("a"),
                risk_rules=[
                    {
                        "id": "r",
                        "level": "high",
                        "when": {"question": "zz", "operator": "=", "answerBoolean": True},
                        "reason": "原因",
                        "reason_en": "why",
                    }
                ],
            ),
            "enable_when_unknown_question",
            "risk_rules[0]",
        ),
        (
            definition(
                boolean("a"),
                risk_rules=[
                    {
                        "id": "r",
                        "level": "high",
                        "when": {"score": {"operator": ">", "value": 1}},
                        "reason": "原因",
                        "reason_en": "why",
                    }
                ],
            ),
            "rule_without_score",
            "risk_rules[0]",
        ),
    ],
)
def test_a_broken_definition_names_the_code_and_path(
    data: dict[str, Any], code: str, path: str
) -> None:
    with pytest.raises(DefinitionInvalid) as caught:
        parse_definition(data)
    first = caught.value.errors[0]
    assert (first["code"], first["path"]) == (code, path)
    assert caught.value.code == "questionnaire_definition_invalid"
    assert isinstance(caught.value, Invalid)


def test_definition_errors_reach_the_problem_body() -> None:
    with pytest.raises(DefinitionInvalid) as caught:
        parse_definition(definition({"linkId": "c", "type": "choice"}))
    problem = to_problem(caught.value)
    assert problem.status == 422
    assert problem.extra["definition_errors"][0]["code"] == "choice_without_options"


# --- answers -----------------------------------------------------------------------------


def test_valid_answers_are_normalized_and_scored() -> None:
    checked = validate_answers(
        mixed(),
        {
            "day": "2026-03-01",
            "a": "y",
            "b": ["q", "p", "q", "r"],
            "n": 7.0,
            "d": 2,
            "at": "2026-03-01T10:00:00+08:00",
            "s": "abc",
            "g1": True,
        },
    )
    assert list(checked.answers) == ["a", "b", "n", "d", "day", "at", "s", "g1"]
    assert checked.answers["b"] == ["q", "p", "r"]
    assert checked.answers["n"] == 7
    assert isinstance(checked.answers["n"], int)
    assert checked.answers["d"] == 2.0
    assert checked.ordinals == {"a": 4, "b": 5}
    assert (checked.score, checked.score_link_id) == (9, "total")
    assert checked.questionnaire == "t"


def test_all_field_errors_are_collected() -> None:
    with pytest.raises(AnswersInvalid) as caught:
        validate_answers(
            mixed(),
            {
                "zz": 1,
                "total": 3,
                "info": "x",
                "b": "nope",
                "n": 11,
                "d": "1.5",
                "day": "2026-02-30",
                "at": "2026-03-01T10:00:00",
                "s": "toolong",
                "g1": True,
            },
        )
    assert codes(caught.value) == {
        "zz": "unknown_item",
        "total": "read_only",
        "info": "not_answerable",
        "a": "required",
        "b": "unknown_option",
        "n": "above_max",
        "d": "wrong_type",
        "day": "invalid_date",
        "at": "invalid_datetime",
        "s": "too_long",
        "g1": "disabled_item",
    }
    problem = to_problem(caught.value)
    assert problem.code == "questionnaire_answers_invalid"
    assert {"linkId": "a", "code": "required", "message": "an answer is required"} in (
        problem.extra["answer_errors"]
    )


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ({"n": "3"}, "wrong_type"),
        ({"n": True}, "wrong_type"),
        ({"n": 2.5}, "wrong_type"),
        ({"n": -1}, "below_min"),
        ({"d": float("inf")}, "wrong_type"),
        ({"day": "20260301"}, "invalid_date"),
        ({"day": 20260301}, "invalid_date"),
        ({"s": 5}, "wrong_type"),
        ({"b": [True]}, "wrong_type"),
        ({"at": "2026-03-01"}, "invalid_datetime"),
    ],
)
def test_wrong_values(answer: dict[str, Any], code: str) -> None:
    with pytest.raises(AnswersInvalid) as caught:
        validate_answers(mixed(), {"a": "x", **answer})
    assert codes(caught.value) == {next(iter(answer)): code}


def test_a_single_choice_takes_one_code() -> None:
    with pytest.raises(AnswersInvalid) as caught:
        validate_answers(mixed(), {"a": ["x", "y"]})
    assert codes(caught.value) == {"a": "too_many_answers"}
    assert validate_answers(mixed(), {"a": ["x"]}).answers["a"] == "x"
    assert validate_answers(mixed(), {"a": "x", "b": "p"}).answers["b"] == ["p"]


def test_blank_answers_count_as_unanswered() -> None:
    with pytest.raises(AnswersInvalid) as caught:
        validate_answers(mixed(), {"a": " ", "b": [], "s": None})
    assert codes(caught.value) == {"a": "required"}


def test_a_disabled_group_needs_no_answers() -> None:
    checked = validate_answers(mixed(), {"a": "x"})
    assert checked.answers == {"a": "x"}
    assert checked.score == 1


def test_the_pci_follow_up_question_opens_on_chest_pain() -> None:
    pci = load_builtin("post-pci-day7")
    assert validate_answers(pci, PCI_OK).score == 0
    with pytest.raises(AnswersInvalid) as caught:
        validate_answers(pci, {**PCI_OK, "chest_pain": True})
    assert codes(caught.value) == {"chest_pain_duration": "required"}
    with pytest.raises(AnswersInvalid) as caught:
        validate_answers(pci, {**PCI_OK, "chest_pain_duration": "over_20_min"})
    assert codes(caught.value) == {"chest_pain_duration": "disabled_item"}
    checked = validate_answers(
        pci,
        {
            **PCI_OK,
            "chest_pain": True,
            "chest_pain_duration": "over_20_min",
            "breathless": "at_rest",
        },
    )
    assert checked.score == 6


def test_enable_behavior_any_and_not_equal() -> None:
    found = parse_definition(
        definition(
            boolean("a"),
            {"linkId": "n", "type": "integer"},
            boolean(
                "c",
                enableBehavior="any",
                enableWhen=[
                    {"question": "a", "operator": "!=", "answerBoolean": True},
                    {"question": "n", "operator": ">=", "answerInteger": 5},
                ],
            ),
        )
    )
    validate_answers(found, {"a": False, "c": True})
    validate_answers(found, {"a": True, "n": 5, "c": True})
    with pytest.raises(AnswersInvalid) as caught:
        validate_answers(found, {"a": True, "n": 4, "c": True})
    assert codes(caught.value) == {"c": "disabled_item"}
    with pytest.raises(AnswersInvalid):  # unanswered: != does not hold either
        validate_answers(found, {"c": True})


def test_satisfaction_is_the_mean_of_the_rated_items() -> None:
    survey = load_builtin("satisfaction-inpatient")
    checked = validate_answers(
        survey,
        {
            "admission": "satisfied",
            "doctor": "very_satisfied",
            "nurses": "very_satisfied",
            "environment": "neutral",
            "overall": "satisfied",
            "comment": "饭菜偏咸",
        },
    )
    assert checked.score == 4.2
    assert satisfaction_score(checked) == 4.2
    assert satisfaction_percent(checked) == 80.0
    outpatient = load_builtin("satisfaction-outpatient")
    with pytest.raises(AnswersInvalid) as caught:
        validate_answers(outpatient, {"nurses": "satisfied"})
    assert codes(caught.value)["nurses"] == "unknown_item"


def test_satisfaction_needs_a_rated_answer() -> None:
    general = load_builtin("discharge-general")
    checked = validate_answers(
        general, {"feeling": "good", "new_symptoms": False, "medication": "all"}
    )
    assert satisfaction_score(checked) == 4
    empty = checked.model_copy(update={"ordinals": {}})
    with pytest.raises(Invalid) as caught:
        satisfaction_score(empty)
    assert caught.value.code == "no_rated_answers"
