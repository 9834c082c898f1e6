"""Answer sets: checked against a definition, normalized, scored.

Input is ``{linkId: value}``: a bool, a number, a string, an ISO date (``YYYY-MM-DD``) or
dateTime (with a time zone), a choice's option key (its code, string or integer), or a list
of keys for a repeating choice. ``None``, ``""`` and ``[]`` count as no answer.

Rules: unknown linkIds, answers to groups/display/calculated items and answers to disabled
items (enableWhen false, or inside a disabled group) are **rejected**, not ignored; every
enabled required item must be answered. All field errors are collected into one
:class:`AnswersInvalid`. Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from shared.domain_errors import Invalid

from .questionnaire import Item, QuestionnaireDefinition
from .questionnaire_conditions import AnswerValue, condition_holds

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ValidatedAnswers(BaseModel):
    """A checked answer set. ``answers``: the enabled, answered items in definition order
    (dates and dateTimes as ISO strings, a repeating choice as a list of keys);
    ``ordinals``: per answered choice item, the sum of its chosen options' ordinals;
    ``score``: the calculated item's value (``None`` without one, or for a mean of nothing)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    questionnaire: str
    version: int
    answers: dict[str, AnswerValue]
    ordinals: dict[str, float]
    score: float | None = None
    score_link_id: str | None = None


@dataclass(frozen=True)
class AnswerError:
    linkId: str
    code: str
    message: str


class AnswersInvalid(Invalid):
    """An answer set with field errors: ``errors`` (also ``extra["answer_errors"]``, as
    ``{linkId, code, message}``, which reaches the problem body)."""

    def __init__(self, errors: list[AnswerError]) -> None:
        super().__init__(
            "questionnaire_answers_invalid",
            f"{len(errors)} answer(s) are invalid; see answer_errors.",
            detail_zh="问卷答案有误，请检查标出的题目",
            extra={"answer_errors": [asdict(e) for e in errors]},
        )
        self.errors = errors


def validate_answers(
    definition: QuestionnaireDefinition, answers: Mapping[str, Any]
) -> ValidatedAnswers:
    """Check ``answers`` against ``definition``; raise :class:`AnswersInvalid` listing all
    errors, else return the normalized answers and the score."""
    errors: list[AnswerError] = []
    items = definition.items_by_id()
    given = {k: v for k, v in answers.items() if not _blank(v)}
    for link_id in given:
        item = items.get(link_id)
        if item is None:
            errors.append(AnswerError(link_id, "unknown_item", "no such item"))
        elif item.calculated is not None:
            errors.append(AnswerError(link_id, "read_only", "the score is calculated"))
        elif not item.answerable:
            errors.append(AnswerError(link_id, "not_answerable", f"a {item.type} takes no answer"))
    normalized: dict[str, AnswerValue] = {}
    _check(definition.item, True, given, items, normalized, errors)
    if errors:
        raise AnswersInvalid(errors)
    ordinals = {
        link_id: sum(_ordinals(items[link_id], value))
        for link_id, value in normalized.items()
        if items[link_id].type == "choice" and _ordinals(items[link_id], value)
    }
    score_item = definition.score_item
    return ValidatedAnswers(
        questionnaire=definition.key,
        version=definition.version,
        answers=normalized,
        ordinals=ordinals,
        score=_score(score_item, ordinals) if score_item else None,
        score_link_id=score_item.linkId if score_item else None,
    )


def _check(
    level: list[Item],
    parent_enabled: bool,
    given: Mapping[str, Any],
    items: Mapping[str, Item],
    normalized: dict[str, AnswerValue],
    errors: list[AnswerError],
) -> None:
    for item in level:
        enabled = parent_enabled and is_enabled(item, normalized, items)
        if item.answerable:
            value = given.get(item.linkId)
            if not enabled and value is not None:
                errors.append(AnswerError(item.linkId, "disabled_item", "not asked: disabled"))
            elif enabled and value is None and item.required:
                errors.append(AnswerError(item.linkId, "required", "an answer is required"))
            elif enabled and value is not None:
                result = _normalize(item, value)
                if isinstance(result, AnswerError):
                    errors.append(result)
                else:
                    normalized[item.linkId] = result
        _check(item.item or [], enabled, given, items, normalized, errors)


def is_enabled(item: Item, answers: Mapping[str, AnswerValue], items: Mapping[str, Item]) -> bool:
    """Whether ``item``'s own enableWhen holds on (normalized) ``answers``."""
    if not item.enableWhen:
        return True
    results = (condition_holds(c, answers, items) for c in item.enableWhen)
    return any(results) if item.enableBehavior == "any" else all(results)


def _blank(value: Any) -> bool:
    return value is None or value == [] or (isinstance(value, str) and not value.strip())


def _normalize(item: Item, value: Any) -> AnswerValue | AnswerError:
    def wrong(expected: str) -> AnswerError:
        return AnswerError(item.linkId, "wrong_type", f"expected {expected}")

    kind = item.type
    if kind == "boolean":
        return value if isinstance(value, bool) else wrong("true or false")
    if kind in ("integer", "decimal"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return wrong("a number")
        if not math.isfinite(value):
            return wrong("a finite number")
        if kind == "integer" and not float(value).is_integer():
            return wrong("a whole number")
        number: int | float = int(value) if kind == "integer" else float(value)
        return _bounded(item, number) or number
    if kind == "date":
        if not isinstance(value, str) or not _DATE.match(value):
            return AnswerError(item.linkId, "invalid_date", "expected a date YYYY-MM-DD")
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return AnswerError(item.linkId, "invalid_date", "no such date")
        return _bounded(item, day) or day.isoformat()
    if kind == "dateTime":
        return _datetime(item, value)
    if kind in ("string", "text"):
        if not isinstance(value, str):
            return wrong("a string")
        if item.maxLength is not None and len(value) > item.maxLength:
            return AnswerError(item.linkId, "too_long", f"at most {item.maxLength} characters")
        return value
    return _choice(item, value)


def _datetime(item: Item, value: Any) -> AnswerValue | AnswerError:
    invalid = AnswerError(item.linkId, "invalid_datetime", "expected an ISO dateTime with zone")
    if not isinstance(value, str) or "T" not in value:
        return invalid
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return invalid
    return invalid if moment.tzinfo is None else moment.isoformat()


def _choice(item: Item, value: Any) -> AnswerValue | AnswerError:
    picked = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not item.repeats and len(picked) > 1:
        return AnswerError(item.linkId, "too_many_answers", "only one option may be chosen")
    keys: list[str] = []
    for key in picked:
        if isinstance(key, bool) or not isinstance(key, str | int):
            return AnswerError(item.linkId, "wrong_type", "expected an option code")
        if item.option(str(key)) is None:
            return AnswerError(item.linkId, "unknown_option", f"{key!r} is not an option")
        if str(key) not in keys:
            keys.append(str(key))
    return keys if item.repeats else keys[0]


def _bounded(item: Item, value: float | date) -> AnswerError | None:
    low, high = item.min_value, item.max_value
    try:
        if low is not None and value < low:  # type: ignore[operator]
            return AnswerError(item.linkId, "below_min", f"at least {low}")
        if high is not None and value > high:  # type: ignore[operator]
            return AnswerError(item.linkId, "above_max", f"at most {high}")
    except TypeError:
        return None
    return None


def _ordinals(item: Item, value: AnswerValue) -> list[float]:
    keys = value if isinstance(value, list) else [str(value)]
    options = (item.option(k) for k in keys)
    return [o.ordinal for o in options if o is not None and o.ordinal is not None]


def _score(score_item: Item, ordinals: Mapping[str, float]) -> float | None:
    calculation = score_item.calculated
    assert calculation is not None
    chosen = [v for k, v in ordinals.items() if calculation.of is None or k in calculation.of]
    if calculation.method == "mean":
        return round(sum(chosen) / len(chosen), 4) if chosen else None
    return round(sum(chosen), 4)


def satisfaction_score(validated: ValidatedAnswers) -> float:
    """A satisfaction survey's figure: the mean (1-5) of its answered 5-point items.

    The library's satisfaction surveys compute the same mean as their score. Raises
    ``Invalid("no_rated_answers")`` when no rated item was answered.
    """
    rated = list(validated.ordinals.values())
    if not rated:
        raise Invalid("no_rated_answers", "No rated item was answered.", detail_zh="未评分")
    return round(sum(rated) / len(rated), 2)


def satisfaction_percent(validated: ValidatedAnswers) -> float:
    """The mean as 0-100: 1 -> 0, 5 -> 100 (``(mean - 1) * 25``)."""
    return round((satisfaction_score(validated) - 1) * 25, 1)
