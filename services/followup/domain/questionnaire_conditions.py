"""The condition language shared by an item's ``enableWhen`` and a risk rule's ``when``.

Conditions are shared by an item's ``enableWhen`` and a rule's ``when``. A definition's
``risk_rules`` (our extension beside ``item``) each have an ``id``, a ``level``
(urgent/high/moderate), a ``when``, ``revisit`` and a Chinese and English reason. ``when``
is one of:

- an answer condition, the enableWhen shape: ``{"question": "chest_pain", "operator": "=",
  "answerBoolean": true}`` (enableWhen semantics, on the validated answers);
- a score condition: ``{"score": {"operator": ">=", "value": 5}}`` (false without a score);
- ``{"any": [...]}`` or ``{"all": [...]}`` of conditions.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

AnswerValue = bool | int | float | str | list[str]


class _Option(Protocol):
    @property
    def valueCoding(self) -> Coding | None: ...


class ItemLike(Protocol):
    """What a condition reads of a questionnaire item (``questionnaire.Item``)."""

    @property
    def type(self) -> str: ...

    def option(self, key: str) -> _Option | None: ...


Operator = Literal["exists", "=", "!=", ">", "<", ">=", "<="]
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Coding(_Model):
    system: str | None = None
    code: str = Field(min_length=1)
    display: str | None = None


class EnableWhen(_Model):
    """A condition on an earlier answer (FHIR enableWhen); also a risk rule's answer condition.

    ``exists`` takes ``answerBoolean``; a choice question compares with ``answerCoding``
    (by code, and by system when both have one), ``answerString`` or ``answerInteger``.
    """

    question: str
    operator: Operator
    answerBoolean: bool | None = None
    answerDecimal: float | None = None
    answerInteger: int | None = None
    answerDate: date | None = None
    answerString: str | None = None
    answerCoding: Coding | None = None

    @model_validator(mode="after")
    def _one_answer(self) -> EnableWhen:
        given = [k for k in _ANSWER_FIELDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("an enableWhen has exactly one answer[x]")
        if self.operator == "exists" and given != ["answerBoolean"]:
            raise ValueError("the exists operator takes answerBoolean")
        return self

    @property
    def answer(self) -> bool | int | float | date | str | Coding:
        value: bool | int | float | date | str | Coding = next(
            getattr(self, k) for k in _ANSWER_FIELDS if getattr(self, k) is not None
        )
        return value

    @property
    def answer_field(self) -> str:
        return next(k for k in _ANSWER_FIELDS if getattr(self, k) is not None)


_ANSWER_FIELDS = (
    "answerBoolean", "answerDecimal", "answerInteger", "answerDate", "answerString",
    "answerCoding",
)  # fmt: skip


class AnswerCondition(EnableWhen):
    """A risk rule's condition on one answer: the enableWhen shape."""


class ScoreThreshold(_Model):
    operator: Literal["=", "!=", ">", "<", ">=", "<="]
    value: float


class ScoreCondition(_Model):
    """A risk rule's condition on the calculated score, e.g. ``{"score": {">=": 5}}``."""

    score: ScoreThreshold


class AnyOf(_Model):
    any: list[Condition] = Field(min_length=1)


class AllOf(_Model):
    all: list[Condition] = Field(min_length=1)


Condition = AnswerCondition | ScoreCondition | AnyOf | AllOf


class RiskRule(_Model):
    """Our extension: a rule over a validated answer set (evaluated by :mod:`.risk_rules`)."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[\w.:-]+$")
    level: Literal["urgent", "high", "moderate"]
    when: Condition
    revisit: bool = False
    reason: str = Field(min_length=1)  # Chinese
    reason_en: str = Field(min_length=1)


LEVELS: tuple[str, ...] = ("urgent", "high", "moderate")  # most urgent first


def condition_holds(
    condition: EnableWhen, answers: Mapping[str, AnswerValue], items: Mapping[str, ItemLike]
) -> bool:
    """FHIR enableWhen semantics: an unanswered question fails every operator but
    ``exists``; ``=``/ordered operators hold when one answer does, ``!=`` when none is equal."""
    value = answers.get(condition.question)
    if condition.operator == "exists":
        return (value is not None) == condition.answerBoolean
    if value is None:
        return False
    item = items[condition.question]
    values = value if isinstance(value, list) else [value]
    target = condition.answer
    if condition.operator == "!=":
        return not any(_equal(item, v, target) for v in values)
    if condition.operator == "=":
        return any(_equal(item, v, target) for v in values)
    return any(_ordered(condition.operator, _comparable(item, v), target) for v in values)


def _equal(item: ItemLike, value: bool | int | float | str, target: object) -> bool:
    if item.type == "choice":
        option = item.option(str(value))
        code = getattr(target, "code", None)
        if code is None:
            return str(value) == str(target)
        system = getattr(target, "system", None)
        mine = option.valueCoding.system if option and option.valueCoding else None
        return code == value and (system is None or mine is None or system == mine)
    return _comparable(item, value) == target


def _comparable(item: ItemLike, value: bool | int | float | str) -> object:
    """A date or dateTime answer as a date (enableWhen compares them with answerDate)."""
    if item.type in ("date", "dateTime") and isinstance(value, str) and _DATE.match(value[:10]):
        return date.fromisoformat(value[:10])
    return value


def _ordered(operator: str, value: object, target: object) -> bool:
    try:
        if operator == ">":
            return bool(value > target)  # type: ignore[operator]
        if operator == "<":
            return bool(value < target)  # type: ignore[operator]
        if operator == ">=":
            return bool(value >= target)  # type: ignore[operator]
        return bool(value <= target)  # type: ignore[operator]
    except TypeError:
        return False


for _model in (AnyOf, AllOf, RiskRule):
    _model.model_rebuild()
