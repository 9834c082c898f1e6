"""Questionnaire definitions: FHIR R4 Questionnaire JSON, the SDC parts we use, risk rules.

An admin may paste FHIR JSON; :func:`parse_definition` checks it and normalizes the SDC
extensions into plain fields (which are also accepted as input, so a stored definition
reloads as is):

- ``answerOption[].extension`` ``http://hl7.org/fhir/StructureDefinition/ordinalValue``
  (``valueDecimal``/``valueInteger``) -> the option's ``ordinal``;
- ``item.extension`` ``http://hl7.org/fhir/StructureDefinition/minValue`` / ``maxValue``
  (``valueInteger``/``valueDecimal``/``valueDate``) -> ``min_value`` / ``max_value``;
- ``item.extension`` ``.../sdc-questionnaire-calculatedExpression`` whose
  ``valueExpression.expression`` is ``%ordinals.sum()`` or ``%ordinals.mean()``, optionally
  limited to some items: ``%ordinals('q1','q2').sum()`` -> ``calculated``
  (``{"method": "sum"|"mean", "of": [...] | null}``). No other FHIRPath is understood.
  The score is the sum (or mean) of the ordinals of the answered, enabled choice items.
- ``text_en``/``title_en`` (ours): the English beside the Chinese ``text``/``title``; the
  FHIR translation extension (lang ``en``) on ``_text``/``_title`` is read into them.

Our extensions beside ``item``: ``risk_rules`` (see :mod:`.risk_rules`). Supported item
types: group, display, boolean, decimal, integer, date, dateTime, string, text, choice;
``repeats`` only on choice; nested items only under groups. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from shared.domain_errors import Invalid

from .questionnaire_conditions import (
    AnswerCondition,
    AnyOf,
    Coding,
    Condition,
    EnableWhen,
    RiskRule,
    ScoreCondition,
)

__all__ = [
    "AnswerOption",
    "Calculation",
    "Coding",
    "DefinitionInvalid",
    "EnableWhen",
    "Item",
    "QuestionnaireDefinition",
    "RiskRule",
    "parse_definition",
]

ORDINAL_URL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
ITEM_WEIGHT_URL = "http://hl7.org/fhir/StructureDefinition/itemWeight"
MIN_VALUE_URL = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE_URL = "http://hl7.org/fhir/StructureDefinition/maxValue"
CALCULATED_URL = (
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
)
TRANSLATION_URL = "http://hl7.org/fhir/StructureDefinition/translation"
_EXPRESSION = re.compile(r"^%ordinals(?:\((?P<of>[^)]*)\))?\.(?P<method>sum|mean)\(\)$")

ItemType = Literal[
    "group", "display", "boolean", "decimal", "integer", "date", "dateTime", "string", "text",
    "choice",
]  # fmt: skip
ANSWERABLE: frozenset[str] = frozenset(
    {"boolean", "decimal", "integer", "date", "dateTime", "string", "text", "choice"}
)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Extension(BaseModel):
    """An extension we do not interpret: kept as given."""

    model_config = ConfigDict(frozen=True, extra="allow")
    url: str


class AnswerOption(_Model):
    """One option of a choice item: exactly one of valueCoding/valueString/valueInteger."""

    valueCoding: Coding | None = None
    valueString: str | None = None
    valueInteger: int | None = None
    ordinal: float | None = None
    extension: list[Extension] | None = None

    @model_validator(mode="before")
    @classmethod
    def _ordinal_extension(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            data = dict(data)
            rest = []
            for ext in data.get("extension") or []:
                if isinstance(ext, Mapping) and ext.get("url") in (ORDINAL_URL, ITEM_WEIGHT_URL):
                    data["ordinal"] = ext.get("valueDecimal", ext.get("valueInteger"))
                else:
                    rest.append(ext)
            data["extension"] = rest or None
        return data

    @model_validator(mode="after")
    def _one_value(self) -> AnswerOption:
        given = [
            v for v in (self.valueCoding, self.valueString, self.valueInteger) if v is not None
        ]
        if len(given) != 1:
            raise ValueError("an answerOption has exactly one of valueCoding/String/Integer")
        return self

    @property
    def key(self) -> str:
        """What an answer gives to pick this option: the code, the string or the integer."""
        if self.valueCoding is not None:
            return self.valueCoding.code
        return self.valueString if self.valueString is not None else str(self.valueInteger)


class Calculation(_Model):
    """A calculated score: the sum or mean of the ordinals of answered choice items."""

    method: Literal["sum", "mean"] = "sum"
    of: list[str] | None = None  # linkIds; None: every choice item whose options have ordinals


class Item(_Model):
    linkId: str = Field(min_length=1, max_length=64, pattern=r"^[\w.:-]+$")
    text: str | None = None
    text_en: str | None = None
    prefix: str | None = None
    type: ItemType
    required: bool = False
    repeats: bool = False
    readOnly: bool = False
    maxLength: int | None = Field(default=None, gt=0)
    min_value: float | date | None = None
    max_value: float | date | None = None
    calculated: Calculation | None = None
    answerOption: list[AnswerOption] | None = None
    enableWhen: list[EnableWhen] | None = None
    enableBehavior: Literal["all", "any"] | None = None
    item: list[Item] | None = None
    extension: list[Extension] | None = None

    @model_validator(mode="before")
    @classmethod
    def _sdc_extensions(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = _english(dict(data), "text")
        rest = []
        for ext in data.get("extension") or []:
            url = ext.get("url") if isinstance(ext, Mapping) else None
            if url in (MIN_VALUE_URL, MAX_VALUE_URL):
                field = "min_value" if url == MIN_VALUE_URL else "max_value"
                data[field] = next(
                    (ext[k] for k in ("valueInteger", "valueDecimal", "valueDate") if k in ext),
                    None,
                )
            elif url == CALCULATED_URL:
                data["calculated"] = _calculation(ext)
            else:
                rest.append(ext)
        data["extension"] = rest or None
        return data

    @property
    def answerable(self) -> bool:
        """Whether a respondent answers it (not a group, display or calculated item)."""
        return self.type in ANSWERABLE and self.calculated is None

    def option(self, key: str) -> AnswerOption | None:
        return next((o for o in self.answerOption or [] if o.key == key), None)


def _english(data: dict[str, Any], field: str) -> dict[str, Any]:
    """Move the English translation extension of ``_<field>`` to ``<field>_en``."""
    element = data.pop(f"_{field}", None)
    for ext in element.get("extension", []) if isinstance(element, Mapping) else []:
        parts = {e.get("url"): e for e in ext.get("extension", []) if isinstance(e, Mapping)}
        lang = parts.get("lang", {}).get("valueCode", "")
        if ext.get("url") == TRANSLATION_URL and str(lang).startswith("en"):
            data.setdefault(f"{field}_en", parts.get("content", {}).get("valueString"))
    return data


def _calculation(ext: Mapping[str, Any]) -> dict[str, Any]:
    expression = ext.get("valueExpression")
    text = expression.get("expression") if isinstance(expression, Mapping) else None
    match = _EXPRESSION.match(str(text or "").replace(" ", ""))
    if match is None:
        raise PydanticCustomError(
            "unsupported_expression",
            "calculatedExpression must be %ordinals.sum() or %ordinals.mean(), "
            "optionally %ordinals('q1','q2').sum(): {expression}",
            {"expression": str(text)},
        )
    of = match["of"]
    ids = [p.strip("'\"") for p in of.split(",")] if of else None
    return {"method": match["method"], "of": ids}


class QuestionnaireDefinition(_Model):
    """A questionnaire: FHIR Questionnaire fields, plus ``risk_rules`` and ``title_en``."""

    resourceType: Literal["Questionnaire"] = "Questionnaire"
    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9\-.]{1,64}$")
    url: str | None = None
    version: int = Field(default=1, ge=1)  # FHIR's string form is accepted when it is digits
    name: str | None = None
    title: str = Field(min_length=1)
    title_en: str | None = None
    status: Literal["draft", "active", "retired"] = "draft"
    item: list[Item] = Field(min_length=1)
    risk_rules: list[RiskRule] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _fhir_forms(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = _english(dict(data), "title")
        if isinstance(data.get("version"), str) and data["version"].isdigit():
            data["version"] = int(data["version"])
        return data

    @model_validator(mode="after")
    def _structure(self) -> QuestionnaireDefinition:
        if self.url is None and self.id is None:
            raise PydanticCustomError("missing_key", "a questionnaire needs a url or an id")
        problem = _first_problem(self)
        if problem is not None:
            code, path, message = problem
            raise PydanticCustomError(code, "{path}: {message}", {"path": path, "message": message})
        return self

    @property
    def key(self) -> str:
        """The stable key: the url, else the id."""
        return self.url or str(self.id)

    def walk(self) -> Iterator[tuple[str, Item]]:
        """Every item with its path (``item[0].item[2]``), in order (depth first)."""
        yield from _walk(self.item, "")

    def items_by_id(self) -> dict[str, Item]:
        return {item.linkId: item for _, item in self.walk()}

    @property
    def score_item(self) -> Item | None:
        return next((item for _, item in self.walk() if item.calculated is not None), None)


def _walk(items: list[Item], prefix: str) -> Iterator[tuple[str, Item]]:
    for i, item in enumerate(items):
        path = f"{prefix}item[{i}]"
        yield path, item
        yield from _walk(item.item or [], f"{path}.")


_COMPATIBLE = {  # question type -> the enableWhen answer[x] it may be compared with
    "boolean": {"answerBoolean"},
    "decimal": {"answerDecimal", "answerInteger"},
    "integer": {"answerInteger", "answerDecimal"},
    "date": {"answerDate"},
    "dateTime": {"answerDate"},
    "string": {"answerString"},
    "text": {"answerString"},
    "choice": {"answerCoding", "answerString", "answerInteger"},
}


def _first_problem(definition: QuestionnaireDefinition) -> tuple[str, str, str] | None:
    seen: dict[str, Item] = {}
    for path, item in definition.walk():
        if item.linkId in seen:
            return "duplicate_link_id", path, f"linkId {item.linkId!r} is used twice"
        problem = _item_problem(item, seen)
        if problem is not None:
            return problem[0], path, problem[1]
        seen[item.linkId] = item
    scored = [(p, i) for p, i in definition.walk() if i.calculated is not None]
    if len(scored) > 1:
        return "multiple_scores", scored[1][0], "only one calculated score item is allowed"
    rule_ids: set[str] = set()
    for n, rule in enumerate(definition.risk_rules):
        path = f"risk_rules[{n}]"
        if rule.id in rule_ids:
            return "duplicate_rule_id", path, f"rule id {rule.id!r} is used twice"
        rule_ids.add(rule.id)
        problem = _condition_problem(rule.when, seen, bool(scored))
        if problem is not None:
            return problem[0], path, problem[1]
    return None


def _item_problem(item: Item, earlier: Mapping[str, Item]) -> tuple[str, str] | None:
    if item.type == "group" and not item.item:
        return "group_without_items", "a group has items"
    if item.type != "group" and item.item:
        return "items_outside_group", "only groups have nested items"
    if item.type == "choice" and not item.answerOption:
        return "choice_without_options", "a choice item lists answerOption"
    if item.type != "choice" and item.answerOption:
        return "options_on_non_choice", "only choice items have answerOption"
    keys = [o.key for o in item.answerOption or []]
    if len(set(keys)) != len(keys):
        return "duplicate_option", "two options have the same code"
    if item.repeats and item.type != "choice":
        return "repeats_unsupported", "only choice items repeat"
    if item.maxLength is not None and item.type not in ("string", "text"):
        return "max_length_on_non_string", "maxLength is for string and text items"
    for bound in (item.min_value, item.max_value):
        numeric = item.type in ("integer", "decimal") and isinstance(bound, float)
        dated = item.type == "date" and isinstance(bound, date)
        if bound is not None and not (numeric or dated):
            return "bound_type_mismatch", "minValue/maxValue must fit the item type"
    if item.calculated is not None:
        if item.type not in ("integer", "decimal"):
            return "score_not_numeric", "a calculated score is an integer or decimal item"
        for ref in item.calculated.of or []:
            target = earlier.get(ref)
            if target is None or target.type != "choice":
                return "score_unknown_item", f"{ref!r} is not an earlier choice item"
    if item.enableWhen and len(item.enableWhen) > 1 and item.enableBehavior is None:
        return "enable_behavior_missing", "enableBehavior is required with several enableWhen"
    for condition in item.enableWhen or []:
        problem = _answer_condition_problem(condition, earlier)
        if problem is not None:
            return problem
    return None


def _answer_condition_problem(
    condition: EnableWhen, earlier: Mapping[str, Item]
) -> tuple[str, str] | None:
    target = earlier.get(condition.question)
    if target is None:
        return "enable_when_unknown_question", f"{condition.question!r} is not an earlier item"
    if not target.answerable:
        return "enable_when_not_a_question", f"{condition.question!r} takes no answer"
    if condition.operator == "exists":
        return None
    field = condition.answer_field
    if field not in _COMPATIBLE[target.type]:
        return "enable_when_type_mismatch", f"{field} does not fit a {target.type} question"
    ordered = condition.operator not in ("=", "!=")
    if ordered and target.type in ("boolean", "choice"):
        return "enable_when_type_mismatch", f"{condition.operator} does not apply to {target.type}"
    if target.type == "choice" and field != "answerBoolean":
        key = condition.answerCoding.code if condition.answerCoding else str(condition.answer)
        if target.option(key) is None:
            return "enable_when_unknown_option", f"{key!r} is not an option of {target.linkId}"
    return None


def _condition_problem(
    condition: Condition, items: Mapping[str, Item], has_score: bool
) -> tuple[str, str] | None:
    if isinstance(condition, AnswerCondition):
        return _answer_condition_problem(condition, items)
    if isinstance(condition, ScoreCondition):
        return None if has_score else ("rule_without_score", "the questionnaire has no score")
    for part in condition.any if isinstance(condition, AnyOf) else condition.all:
        problem = _condition_problem(part, items, has_score)
        if problem is not None:
            return problem
    return None


class DefinitionInvalid(Invalid):
    """A questionnaire definition that does not hold. ``errors``: ``{path, code, message}``
    (also in ``extra["definition_errors"]``, which reaches the problem body)."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        first = errors[0]
        super().__init__(
            "questionnaire_definition_invalid",
            f"The questionnaire definition is invalid: {first['path']}: {first['message']}",
            detail_zh="问卷定义无效",
            extra={"definition_errors": errors},
        )
        self.errors = errors


def parse_definition(data: Mapping[str, Any]) -> QuestionnaireDefinition:
    """Check and normalize a definition (FHIR Questionnaire JSON or our stored form).

    Raises :class:`DefinitionInvalid` listing ``{path, code, message}``: a structural code
    (``duplicate_link_id``, ``enable_when_unknown_question``, ``choice_without_options``…)
    or pydantic's type for a shape error (``missing``, ``extra_forbidden``, ``literal_error``…).
    """
    try:
        return QuestionnaireDefinition.model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            ctx = err.get("ctx") or {}
            loc = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"]).replace(
                ".[", "["
            )
            path = str(ctx.get("path") or loc)
            message = str(ctx.get("message") or err["msg"])
            errors.append({"path": path, "code": err["type"], "message": message})
        raise DefinitionInvalid(errors) from None
