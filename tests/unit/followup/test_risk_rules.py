"""Risk rules: which answers call for attention, and how urgently."""

from __future__ import annotations

from typing import Any

import pytest

from services.followup.domain.questionnaire import parse_definition
from services.followup.domain.questionnaire_answers import validate_answers
from services.followup.domain.risk_rules import RiskHit, evaluate, highest_level
from services.followup.questionnaire_library import load_builtin

pytestmark = pytest.mark.unit

PCI_OK = {
    "chest_pain": False,
    "breathless": "none",
    "antiplatelet_daily": True,
    "bleeding": False,
    "puncture_swelling": "none",
}


def pci_hits(**answers: Any) -> list[RiskHit]:
    pci = load_builtin("post-pci-day7")
    return evaluate(pci, validate_answers(pci, {**PCI_OK, **answers}))


def test_no_risk_when_all_is_well() -> None:
    assert pci_hits() == []
    assert highest_level([]) is None


def test_chest_pain_is_urgent_with_a_revisit() -> None:
    hits = pci_hits(chest_pain=True, chest_pain_duration="under_5_min")
    assert [h.rule_id for h in hits] == ["chest_pain"]
    assert hits[0].urgent
    assert hits[0].revisit
    assert hits[0].reason
    assert hits[0].reason_en


def test_breathless_at_rest_is_urgent() -> None:
    hits = pci_hits(breathless="at_rest")
    assert [(h.rule_id, h.level) for h in hits] == [("breathless_at_rest", "urgent")]


def test_stopped_antiplatelet_is_high() -> None:
    hits = pci_hits(antiplatelet_daily=False)
    assert [(h.rule_id, h.level, h.urgent) for h in hits] == [
        ("antiplatelet_stopped", "high", False)
    ]


def test_a_score_of_five_is_high_and_hits_are_most_urgent_first() -> None:
    hits = pci_hits(breathless="on_exertion", puncture_swelling="marked", bleeding=True)
    assert [h.rule_id for h in hits] == ["bleeding"]  # score 3
    hits = pci_hits(
        chest_pain=True, chest_pain_duration="5_to_20_min", breathless="on_exertion",
        puncture_swelling="marked", bleeding=True,
    )  # fmt: skip
    assert [(h.rule_id, h.level) for h in hits] == [
        ("chest_pain", "urgent"),
        ("score_high", "high"),
        ("bleeding", "moderate"),
    ]
    assert highest_level(hits) == "urgent"


SCORED = {
    "resourceType": "Questionnaire",
    "id": "scored",
    "title": "T",
    "item": [
        {
            "linkId": f"q{n}",
            "type": "choice",
            "answerOption": [{"valueCoding": {"code": str(v)}, "ordinal": v} for v in range(5)],
        }
        for n in range(1, 5)
    ]
    + [{"linkId": "total", "type": "integer", "readOnly": True, "calculated": {"method": "sum"}}],
    "risk_rules": [
        {
            "id": "over_12",
            "level": "high",
            "when": {"score": {"operator": ">", "value": 12}},
            "reason": "总分超过12",
            "reason_en": "Score over 12",
        },
        {
            "id": "both_high",
            "level": "moderate",
            "revisit": True,
            "when": {
                "all": [
                    {"question": "q1", "operator": "=", "answerCoding": {"code": "4"}},
                    {
                        "any": [
                            {"question": "q2", "operator": "=", "answerString": "4"},
                            {"question": "q3", "operator": "exists", "answerBoolean": False},
                        ]
                    },
                ]
            },
            "reason": "两项都高",
            "reason_en": "Both high",
        },
    ],
}


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"q1": "4", "q2": "4", "q3": "4", "q4": "1"}, ["over_12", "both_high"]),
        ({"q1": "4", "q2": "4", "q3": "4", "q4": "0"}, ["both_high"]),
        ({"q1": "4", "q3": "4", "q4": "4"}, []),
        ({"q1": "4"}, ["both_high"]),
        ({"q2": "4"}, []),
    ],
)
def test_score_threshold_and_nested_any_all(answers: dict[str, str], expected: list[str]) -> None:
    found = parse_definition(SCORED)
    hits = evaluate(found, validate_answers(found, answers))
    assert [h.rule_id for h in hits] == expected


def test_satisfaction_flags_a_dissatisfied_patient() -> None:
    survey = load_builtin("satisfaction-outpatient")
    happy = {k: "satisfied" for k in ("registration", "doctor", "environment", "overall")}
    assert evaluate(survey, validate_answers(survey, happy)) == []
    unhappy = {**happy, "overall": "dissatisfied"}
    hits = evaluate(survey, validate_answers(survey, unhappy))
    assert [(h.rule_id, h.level, h.revisit) for h in hits] == [("dissatisfied", "moderate", False)]
    low = dict.fromkeys(happy, "dissatisfied") | {"overall": "neutral"}
    assert [h.rule_id for h in evaluate(survey, validate_answers(survey, low))] == ["dissatisfied"]


def test_discharge_general_rules() -> None:
    general = load_builtin("discharge-general")
    answers = {
        "feeling": "poor",
        "new_symptoms": True,
        "new_symptoms_detail": "头晕",
        "medication": "stopped",
    }
    hits = evaluate(general, validate_answers(general, answers))
    assert [(h.rule_id, h.level) for h in hits] == [
        ("feeling_poor", "high"),
        ("medication_stopped", "high"),
        ("new_symptoms", "moderate"),
    ]
