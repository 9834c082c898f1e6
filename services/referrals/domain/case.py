"""What a referral case holds, as the referring doctor sends it (pure models and rules).

The stored case (collection ``referral_cases``, one document a case) is:

``_id`` (the referral id), ``patient_id`` (appointments' real-name patient: no national ID
is copied), ``episode_id``, ``direction``, ``urgency``, ``sending_org_id``,
``sending_department_id``, ``sending_doctor_id``, ``diagnosis`` {code, text}, ``reason``,
``specialty``, ``preferred_org_id``, ``preferred_date``, ``clinical`` (see
:class:`ClinicalSummary`), ``documents`` (metadata only), ``consent``, ``status`` (FHIR Task
status), ``business_status``, ``live``, ``receiving_org_id``, ``receiving_department_id``,
``routing`` {attempt, candidates [{org_id, department_id, score, signals}], explanation,
routed_by, routed_at}, ``declined_org_ids``, ``due_at`` (acceptance deadline),
``escalated``, ``booking`` {booking_request_id, org_id, department_id, status,
appointment_id, starts_at, reason}, ``arrived_at``, ``notes`` [{note_id, text, author}],
``summary`` {diagnosis, treatment, recommendations, follow_up_advice}, ``history``
[{at, by {id, role, org_id}, action, from_status, to_status, business_status, reason,
details}], ``version``, ``created_at``, ``updated_at``, ``accepted_at``, ``completed_at``.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.referrals.domain.directory import Direction, Urgency
from shared.domain_errors import Invalid

# ICD-10 (WHO and its Chinese national clinical edition, GB/T 14396): a letter (U is
# reserved), two digits, optionally a dot and one to four more characters (I63.901, I10.X00).
ICD10 = re.compile(r"^[A-TV-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$")
SPECIALTY = r"^[a-z][a-z0-9_]{1,39}$"
ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"


class Diagnosis(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=3, max_length=12)
    text: str = Field(min_length=1, max_length=200)

    @field_validator("code")
    @classmethod
    def _icd10(cls, code: str) -> str:
        value = code.strip().upper()
        if not ICD10.match(value):
            raise ValueError("not an ICD-10 code (a letter, two digits, e.g. I20.0, I63.901)")
        return value


class ClinicalSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chief_complaint: str = Field("", max_length=500)
    history: str = Field("", max_length=4000)
    examination: str = Field("", max_length=4000)
    investigations: str = Field("", max_length=4000)
    treatment_so_far: str = Field("", max_length=4000)
    medications: list[str] = Field(default_factory=list, max_length=50)
    allergies: list[str] = Field(default_factory=list, max_length=50)


class DocumentRef(BaseModel):
    """A document held elsewhere (the HIS, a PACS): its metadata only, never its content."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["discharge_summary", "lab_report", "imaging", "ecg", "prescription", "other"]
    title: str = Field(min_length=1, max_length=200)
    uri: str = Field(min_length=1, max_length=500, pattern=r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
    content_type: str | None = Field(None, max_length=100)
    created: date | None = None


class Consent(BaseModel):
    """The patient's consent to be referred, as recorded by the referring side."""

    model_config = ConfigDict(extra="forbid")

    given: bool
    by: Literal["patient", "guardian"] = "patient"
    method: Literal["signature", "verbal", "electronic"]
    recorded_at: datetime


class ReferralIn(BaseModel):
    """A new referral. The referring organization is the caller's (staff) or named (HIS)."""

    model_config = ConfigDict(extra="forbid")

    patient_id: str = Field(pattern=ID)
    episode_id: str = Field(pattern=ID, description="the HIS encounter the referral is for")
    direction: Direction
    urgency: Urgency = Urgency.ROUTINE
    sending_org_id: str | None = Field(None, pattern=ID)
    sending_department_id: str | None = Field(None, pattern=ID)
    sending_doctor_id: str | None = Field(None, pattern=ID)
    diagnosis: Diagnosis
    reason: str = Field(min_length=1, max_length=1000)
    specialty: str = Field(pattern=SPECIALTY)
    preferred_org_id: str | None = Field(None, pattern=ID)
    preferred_date: date | None = None
    clinical: ClinicalSummary = Field(default_factory=ClinicalSummary)
    documents: list[DocumentRef] = Field(default_factory=list, max_length=20)
    consent: Consent
    submit: bool = Field(True, description="false keeps it a draft")


def check_consent(consent: Consent) -> None:
    if not consent.given:
        raise Invalid(
            "consent_required",
            "a referral needs the patient's recorded consent",
            detail_zh="转诊需记录患者知情同意",
            extra={"field": "consent.given"},
        )


class Summary(BaseModel):
    """What closes the loop: it goes back to the referring doctor."""

    model_config = ConfigDict(extra="forbid")

    diagnosis: str = Field(min_length=1, max_length=2000)
    treatment: str = Field(min_length=1, max_length=4000)
    recommendations: str = Field(min_length=1, max_length=4000)
    follow_up_advice: str = Field(min_length=1, max_length=4000)
