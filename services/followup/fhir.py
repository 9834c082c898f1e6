"""Follow-up questionnaires as FHIR: a validated answer set as a QuestionnaireResponse, a
definition as a Questionnaire.

Pure functions to FHIR JSON, built with ``fhir.resources``' **R4B** models (as
:mod:`services.referrals.fhir` does; the elements used are the same in R4), so the library
checks types, required elements and formats. The response mirrors the definition: groups
nest their answered items, disabled and unanswered items are absent, the calculated score
is the answer of its item. Raises ``ValueError`` (pydantic's ``ValidationError`` among them)
for input that does not make a valid resource.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.expression import Expression
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.fhirprimitiveextension import FHIRPrimitiveExtension
from fhir.resources.R4B.questionnaire import (
    Questionnaire,
    QuestionnaireItem,
    QuestionnaireItemAnswerOption,
    QuestionnaireItemEnableWhen,
)
from fhir.resources.R4B.questionnaireresponse import (
    QuestionnaireResponse,
    QuestionnaireResponseItem,
    QuestionnaireResponseItemAnswer,
)
from fhir.resources.R4B.reference import Reference

from services.followup.domain.questionnaire import (
    CALCULATED_URL,
    MAX_VALUE_URL,
    MIN_VALUE_URL,
    ORDINAL_URL,
    TRANSLATION_URL,
    EnableWhen,
    Item,
    QuestionnaireDefinition,
)
from services.followup.domain.questionnaire_answers import ValidatedAnswers
from services.followup.domain.questionnaire_conditions import AnswerValue

CARELOOP = "https://careloop.example/fhir"
RESPONSE_STATUSES = frozenset(
    {"in-progress", "completed", "amended", "entered-in-error", "stopped"}
)


def canonical(definition: QuestionnaireDefinition) -> str:
    """The definition's canonical ``url|version`` (a url under ours when it has only an id)."""
    url = definition.url or f"{CARELOOP}/Questionnaire/{definition.id}"
    return f"{url}|{definition.version}"


def questionnaire_response(
    definition: QuestionnaireDefinition,
    validated: ValidatedAnswers,
    *,
    response_id: str,
    patient_id: str,
    authored: datetime,
    author_kind: Literal["patient", "agent"],
    agent_id: str | None = None,
    status: str = "completed",
) -> dict[str, Any]:
    """The FHIR R4(B) QuestionnaireResponse of ``validated``, as JSON.

    The patient is the subject and the source; the author is the patient, or the agent who
    took the answers on a call (``Practitioner/{agent_id}``, or just a display without id).
    """
    if (validated.questionnaire, validated.version) != (definition.key, definition.version):
        raise ValueError("the answers were validated against another questionnaire version")
    if status not in RESPONSE_STATUSES:
        raise ValueError(f"not a QuestionnaireResponse status: {status!r}")
    patient = Reference(reference=f"Patient/{patient_id}", type="Patient")
    if author_kind == "patient":
        author = patient
    elif agent_id:
        author = Reference(reference=f"Practitioner/{agent_id}", type="Practitioner")
    else:
        author = Reference(display="CareLoop follow-up agent")
    response = QuestionnaireResponse(
        id=response_id,
        questionnaire=canonical(definition),
        status=status,
        subject=patient,
        source=patient,
        author=author,
        authored=authored,
        item=_response_items(definition.item, validated) or None,
    )
    return response.model_dump(mode="json")


def _response_items(
    items: list[Item], validated: ValidatedAnswers
) -> list[QuestionnaireResponseItem]:
    out = []
    for item in items:
        if item.type == "group":
            children = _response_items(item.item or [], validated)
            if children:
                out.append(
                    QuestionnaireResponseItem(linkId=item.linkId, text=item.text, item=children)
                )
            continue
        answers = _answers(item, validated)
        if answers:
            out.append(
                QuestionnaireResponseItem(linkId=item.linkId, text=item.text, answer=answers)
            )
    return out


def _answers(item: Item, validated: ValidatedAnswers) -> list[QuestionnaireResponseItemAnswer]:
    if item.calculated is not None:
        score = validated.score if item.linkId == validated.score_link_id else None
        if score is None:
            return []
        if item.type == "integer" and float(score).is_integer():
            return [QuestionnaireResponseItemAnswer(valueInteger=int(score))]
        return [QuestionnaireResponseItemAnswer(valueDecimal=Decimal(str(score)))]
    value = validated.answers.get(item.linkId)
    if value is None:
        return []
    values: list[AnswerValue] = list(value) if isinstance(value, list) else [value]
    return [_answer(item, v) for v in values]


def _answer(item: Item, value: AnswerValue) -> QuestionnaireResponseItemAnswer:
    match item.type:
        case "boolean":
            return QuestionnaireResponseItemAnswer(valueBoolean=value)
        case "integer":
            return QuestionnaireResponseItemAnswer(valueInteger=value)
        case "decimal":
            return QuestionnaireResponseItemAnswer(valueDecimal=Decimal(str(value)))
        case "date":
            return QuestionnaireResponseItemAnswer(valueDate=value)
        case "dateTime":
            return QuestionnaireResponseItemAnswer(valueDateTime=value)
        case "string" | "text":
            return QuestionnaireResponseItemAnswer(valueString=value)
    option = item.option(str(value))
    if option is None:
        raise ValueError(f"{value!r} is not an option of {item.linkId}")
    if option.valueCoding is not None:
        coding = option.valueCoding
        return QuestionnaireResponseItemAnswer(
            valueCoding=Coding(system=coding.system, code=coding.code, display=coding.display)
        )
    if option.valueString is not None:
        return QuestionnaireResponseItemAnswer(valueString=option.valueString)
    return QuestionnaireResponseItemAnswer(valueInteger=option.valueInteger)


def questionnaire_resource(definition: QuestionnaireDefinition) -> dict[str, Any]:
    """The definition as a FHIR R4(B) Questionnaire (JSON), our fields as the SDC/core
    extensions they came from; ``text_en`` becomes a translation extension on ``text``.
    Risk rules are ours and are left out."""
    questionnaire = Questionnaire(
        id=definition.id,
        url=definition.url,
        version=str(definition.version),
        name=definition.name,
        title=definition.title,
        title__ext=_translation(definition.title_en),
        status=definition.status,
        item=[_question(item) for item in definition.item],
    )
    return questionnaire.model_dump(mode="json")


def _question(item: Item) -> QuestionnaireItem:
    extensions = []
    for url, bound in ((MIN_VALUE_URL, item.min_value), (MAX_VALUE_URL, item.max_value)):
        if bound is not None:
            extensions.append(Extension(url=url, **_bound_value(item, bound)))
    if item.calculated is not None:
        of = item.calculated.of
        scope = "(" + ",".join(f"'{link_id}'" for link_id in of) + ")" if of else ""
        expression = Expression(
            language="text/fhirpath", expression=f"%ordinals{scope}.{item.calculated.method}()"
        )
        extensions.append(Extension(url=CALCULATED_URL, valueExpression=expression))
    return QuestionnaireItem(
        linkId=item.linkId,
        text=item.text,
        text__ext=_translation(item.text_en),
        prefix=item.prefix,
        type=item.type,
        required=item.required or None,
        repeats=item.repeats or None,
        readOnly=item.readOnly or item.calculated is not None or None,
        maxLength=item.maxLength,
        extension=extensions or None,
        answerOption=[_option(o.model_dump(exclude_none=True)) for o in item.answerOption or []]
        or None,
        enableWhen=[_enable_when(c) for c in item.enableWhen or []] or None,
        enableBehavior=item.enableBehavior,
        item=[_question(child) for child in item.item or []] or None,
    )


def _bound_value(item: Item, bound: float | Any) -> dict[str, Any]:
    if item.type == "integer":
        return {"valueInteger": int(bound)}
    if item.type == "decimal":
        return {"valueDecimal": Decimal(str(bound))}
    return {"valueDate": bound}


def _translation(text_en: str | None) -> FHIRPrimitiveExtension | None:
    if not text_en:
        return None
    return FHIRPrimitiveExtension(
        extension=[
            Extension(
                url=TRANSLATION_URL,
                extension=[
                    Extension(url="lang", valueCode="en"),
                    Extension(url="content", valueString=text_en),
                ],
            )
        ]
    )


def _option(option: dict[str, Any]) -> QuestionnaireItemAnswerOption:
    ordinal = option.pop("ordinal", None)
    if ordinal is not None:
        option["extension"] = [
            *option.get("extension", []),
            {"url": ORDINAL_URL, "valueDecimal": Decimal(str(ordinal))},
        ]
    return QuestionnaireItemAnswerOption.model_validate(option)


def _enable_when(condition: EnableWhen) -> QuestionnaireItemEnableWhen:
    return QuestionnaireItemEnableWhen.model_validate(
        condition.model_dump(mode="json", exclude_none=True)
    )
