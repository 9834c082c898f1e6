"""The complaints' vocabulary: categories, severities, channels, complexities, statuses
and escalation levels, with their Chinese and English labels (``complaint.py`` re-exports
them).

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum


@dataclass(frozen=True, slots=True)
class Label:
    zh: str
    en: str


class Category(StrEnum):
    MEDICAL_QUALITY = "medical_quality"
    SERVICE_ATTITUDE = "service_attitude"
    WAITING_REGISTRATION = "waiting_registration"
    FEES_BILLING = "fees_billing"
    ENVIRONMENT = "environment"
    PRIVACY = "privacy"
    OTHER = "other"


CATEGORY_LABELS: Mapping[Category, Label] = {
    Category.MEDICAL_QUALITY: Label("医疗质量", "Medical quality"),
    Category.SERVICE_ATTITUDE: Label("服务态度", "Service attitude"),
    Category.WAITING_REGISTRATION: Label("候诊与挂号", "Waiting and registration"),
    Category.FEES_BILLING: Label("收费", "Fees and billing"),
    Category.ENVIRONMENT: Label("就医环境", "Environment"),
    Category.PRIVACY: Label("隐私保护", "Privacy"),
    Category.OTHER: Label("其他", "Other"),
}


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


SEVERITY_LABELS: Mapping[Severity, Label] = {
    Severity.LOW: Label("轻微", "Low"),
    Severity.MEDIUM: Label("一般", "Medium"),
    Severity.HIGH: Label("严重", "High"),
    Severity.CRITICAL: Label("重大", "Critical"),
}


class Channel(StrEnum):
    PATIENT_API = "patient_api"  # raised by the patient (app, web)
    HOTLINE = "hotline"  # taken by a hotline agent
    COUNTER = "counter"  # in person, at a service desk
    LETTER = "letter"  # letters and e-mail


class Complexity(StrEnum):
    ON_THE_SPOT = "on_the_spot"  # 当场协调处理
    INVESTIGATION = "investigation"  # 需调查核实: feedback within 5 working days
    MULTI_DEPARTMENT = "multi_department"  # 涉及多个科室: within 10 working days


class Status(StrEnum):
    RECEIVED = "received"  # owned by the first receiver
    IN_PROGRESS = "in_progress"  # being investigated
    RESOLVED = "resolved"  # resolution recorded; awaiting the callback
    CLOSED = "closed"  # callback done (or complainant unreachable)
    WITHDRAWN = "withdrawn"


OPEN_STATUSES: frozenset[Status] = frozenset({Status.RECEIVED, Status.IN_PROGRESS})


class EscalationLevel(IntEnum):
    NONE = 0
    DEPARTMENT = 1  # the department head and the patient-relations office (医患办)
    MANAGEMENT = 2  # the hospital's management (分管院领导)
