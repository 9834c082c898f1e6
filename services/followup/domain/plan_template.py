"""Plan templates: which template fits a discharge, and when its tasks fall due.

A template belongs to an organization (or to the whole alliance: ``org_id`` None), may
name a department and an ICD-10 code prefix, and lists steps: a call, a questionnaire or
a revisit on day N after discharge at a local time of day. The most specific active
template wins: organization, then department, then the longest ICD-10 prefix. When none
fits, :data:`DEFAULT_TEMPLATE` (a call on day 7) does.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ICD10_PREFIX = re.compile(r"^[A-Z][0-9]{0,2}(\.[0-9A-Z]{0,4})?$")
ID = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w.:-]+$")]


class StepKind(StrEnum):
    CALL = "call"  # an agent calls the patient (the call list)
    QUESTIONNAIRE = "questionnaire"  # a link is sent; the patient answers (or an agent does)
    REVISIT = "revisit"  # a revisit is booked through appointments


class Priority(StrEnum):
    ROUTINE = "routine"
    HIGH = "high"


class PlanStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: StepKind
    day: int = Field(ge=0, le=365, description="days after discharge")
    at: time = Field(time(10, 0), description="local time of day it falls due")
    title: str = Field(min_length=1, max_length=120)
    questionnaire_url: str | None = Field(None, max_length=200)
    priority: Priority = Priority.ROUTINE

    @model_validator(mode="after")
    def _questionnaire_named(self) -> PlanStep:
        if self.kind is StepKind.QUESTIONNAIRE and not self.questionnaire_url:
            raise ValueError("a questionnaire step names its questionnaire_url")
        return self


class TemplateBody(BaseModel):
    """What an admin writes; the service adds the id, version and authorship."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=120)
    org_id: ID | None = None  # None: the whole alliance
    department_id: ID | None = None
    icd_prefix: str | None = Field(None, max_length=8, description="e.g. I25 or I21.4")
    steps: list[PlanStep] = Field(min_length=1, max_length=50)

    @field_validator("icd_prefix")
    @classmethod
    def _icd(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().upper()
        if not ICD10_PREFIX.match(value):
            raise ValueError("not an ICD-10 code prefix (a letter, up to two digits, .subcode)")
        return value


@dataclass(frozen=True, slots=True)
class Template:
    template_id: str
    version: int
    body: TemplateBody


DEFAULT_TEMPLATE = Template(
    template_id="default",
    version=1,
    body=TemplateBody(
        name="Default follow-up after discharge",
        steps=[PlanStep(kind=StepKind.CALL, day=7, title="Post-discharge call")],
    ),
)


def _specificity(template: Template, department_id: str | None, codes: Sequence[str]) -> int:
    """-1 when it does not fit; the higher, the more specific."""
    body = template.body
    score = 0
    if body.department_id is not None:
        if body.department_id != department_id:
            return -1
        score += 100
    if body.icd_prefix is not None:
        prefix = body.icd_prefix
        if not any(c.upper().startswith(prefix) for c in codes):
            return -1
        score += 10 * len(prefix)
    return score


def choose(
    templates: Iterable[Template],
    *,
    org_id: str | None,
    department_id: str | None,
    diagnosis_codes: Sequence[str],
) -> Template:
    """The most specific template that fits: the organization's own before the alliance's,
    then a department match, then the longest ICD-10 prefix (ties: the newest id)."""
    best: tuple[int, int, str, Template] | None = None
    for template in templates:
        owner = template.body.org_id
        if owner is not None and owner != org_id:
            continue
        fit = _specificity(template, department_id, diagnosis_codes)
        if fit < 0:
            continue
        rank = (1 if owner is not None else 0, fit, template.template_id, template)
        if best is None or rank[:3] > best[:3]:
            best = rank
    return best[3] if best else DEFAULT_TEMPLATE


def due_at(step: PlanStep, discharged_at: datetime, timezone: str) -> datetime:
    """The step's due time: day N after the discharge date (local), at its local time."""
    zone = ZoneInfo(timezone)
    local_day = discharged_at.astimezone(zone).date() + timedelta(days=step.day)
    return datetime.combine(local_day, step.at, tzinfo=zone).astimezone(discharged_at.tzinfo)
