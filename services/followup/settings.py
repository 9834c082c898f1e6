"""Settings of the followup service (environment prefix ``CARELOOP_FOLLOWUP_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class FollowupSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CARELOOP_FOLLOWUP_", extra="ignore", frozen=True)

    service_name: str = "followup"
    http_port: int = 8104

    # HL7 v2 over MLLP from the HIS (2575 is HL7's registered port); 0 picks a free port
    mllp_enabled: bool = True
    mllp_host: str = "127.0.0.1"
    mllp_port: int = Field(2575, ge=0, le=65535)
    mllp_max_frame_bytes: int = Field(1024 * 1024, ge=1024)
    # an HL7 sending facility (MSH-4) as the alliance's organization id, where they differ
    facility_orgs: dict[str, str] = Field(default_factory=dict)

    # the call list: how long a claim holds a task for one agent
    claim_minutes: float = Field(15, gt=0)
    # no answer: try again this much later, at most this many tries, then a nurse takes over
    no_answer_retry_minutes: float = Field(120, gt=0)
    no_answer_max_tries: int = Field(3, ge=1, le=10)
    # a questionnaire not answered this long after it was sent goes on the call list
    questionnaire_answer_days: float = Field(3, gt=0)
    # a revisit step asks appointments this many days before its day, for a window around it
    revisit_ask_days_before: int = Field(7, ge=0, le=30)
    revisit_window_days: int = Field(5, ge=0, le=30)

    # where the patient's mini-program opens a questionnaire or survey (the id is appended)
    questionnaire_link_base: str = "https://m.careloop.example/followup/questionnaires/"
    survey_link_base: str = "https://m.careloop.example/followup/surveys/"
    # satisfaction surveys: sent this long after an outpatient visit / a discharge, and
    # answerable this many days after they are sent
    survey_delay_hours: float = Field(2, ge=0, le=24 * 14)
    survey_delay_hours_inpatient: float = Field(24, ge=0, le=24 * 30)
    survey_valid_days: float = Field(14, gt=0, le=90)
