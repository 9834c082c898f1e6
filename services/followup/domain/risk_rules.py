"""Risk rules: which of a questionnaire's ``risk_rules`` hold on a validated answer set.

A definition's ``risk_rules`` (our extension beside ``item``) each have an ``id``, a
``level`` (urgent/high/moderate), a ``when`` (``questionnaire_conditions``), ``revisit`` and
a Chinese and English reason.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .questionnaire import Item, QuestionnaireDefinition
from .questionnaire_answers import ValidatedAnswers
from .questionnaire_conditions import (
    LEVELS,
    AllOf,
    AnswerCondition,
    AnyOf,
    Condition,
    ScoreCondition,
    condition_holds,
)

__all__ = ["LEVELS", "RiskHit", "evaluate", "highest_level"]


@dataclass(frozen=True)
class RiskHit:
    rule_id: str
    level: Literal["urgent", "high", "moderate"]
    reason: str
    reason_en: str
    revisit: bool

    @property
    def urgent(self) -> bool:
        return self.level == "urgent"


def evaluate(definition: QuestionnaireDefinition, validated: ValidatedAnswers) -> list[RiskHit]:
    """The rules that hold on ``validated``, most urgent first (then in definition order)."""
    items = definition.items_by_id()
    hits = [
        RiskHit(rule.id, rule.level, rule.reason, rule.reason_en, rule.revisit)
        for rule in definition.risk_rules
        if _holds(rule.when, validated, items)
    ]
    return sorted(hits, key=lambda hit: LEVELS.index(hit.level))


def highest_level(hits: list[RiskHit]) -> str | None:
    """The most urgent level among ``hits`` (``None`` for none)."""
    return min((hit.level for hit in hits), key=LEVELS.index, default=None)


def _holds(condition: Condition, validated: ValidatedAnswers, items: Mapping[str, Item]) -> bool:
    if isinstance(condition, AnswerCondition):
        return condition_holds(condition, validated.answers, items)
    if isinstance(condition, ScoreCondition):
        score, threshold = validated.score, condition.score
        if score is None:
            return False
        return {
            "=": score == threshold.value,
            "!=": score != threshold.value,
            ">": score > threshold.value,
            "<": score < threshold.value,
            ">=": score >= threshold.value,
            "<=": score <= threshold.value,
        }[threshold.operator]
    if isinstance(condition, AnyOf):
        return any(_holds(part, validated, items) for part in condition.any)
    assert isinstance(condition, AllOf)
    return all(_holds(part, validated, items) for part in condition.all)
