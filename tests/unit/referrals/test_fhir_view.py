"""The FHIR view of a referral case: a Task and a ServiceRequest built with fhir.resources'
R4B models, so what goes out is a resource the library accepts (pure functions, no I/O)."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task
from pydantic import ValidationError

from services.referrals.fhir import (
    BUSINESS_STATUS_SYSTEM,
    DIRECTION_EXTENSION,
    ICD10_SYSTEM,
    OUTPUT_SYSTEM,
    SPECIALTY_SYSTEM,
    service_request_of,
    task_of,
)

pytestmark = pytest.mark.unit

SHANGHAI = ZoneInfo("Asia/Shanghai")
CREATED = datetime(2025, 3, 17, 9, 30, tzinfo=SHANGHAI)
REFERRAL_ID = "0195a3b2-7c1e-7a10-8f00-123456789abc"


def requested_case() -> dict[str, Any]:
    """A case as the store holds it, just routed to a county hospital."""
    return {
        "_id": REFERRAL_ID,
        "patient_id": "0195a3b2-0000-7000-8000-00000000p001",
        "episode_id": "ENC-2025-0317-0042",
        "direction": "upward",
        "urgency": "urgent",
        "sending_org_id": "township_a",
        "sending_department_id": "township_a.gp",
        "sending_doctor_id": "doc-li",
        "diagnosis": {"code": "I20.0", "text": "不稳定型心绞痛"},
        "reason": "反复胸痛三天，需心内科评估及冠脉造影",
        "specialty": "cardiology",
        "preferred_org_id": "county_1",
        "preferred_date": "2025-03-20",
        "clinical": {
            "chief_complaint": "胸痛3天",
            "history": "高血压10年",
            "examination": "",
            "investigations": "ECG: ST压低",
            "treatment_so_far": "硝酸甘油",
            "medications": ["aspirin"],
            "allergies": [],
        },
        "documents": [
            {
                "kind": "ecg",
                "title": "ECG 2025-03-17",
                "uri": "https://his.township-a.example/docs/ecg/991",
                "content_type": "application/pdf",
                "created": "2025-03-17",
            }
        ],
        "consent": {
            "given": True,
            "by": "patient",
            "method": "signature",
            "recorded_at": CREATED,
        },
        "status": "requested",
        "business_status": "awaiting_triage",
        "live": True,
        "receiving_org_id": "county_1",
        "receiving_department_id": "county_1.cardio",
        "routing": {"attempt": 1, "candidates": [], "explanation": "", "routed_by": "router"},
        "declined_org_ids": [],
        "due_at": CREATED + timedelta(hours=2),
        "escalated": False,
        "booking": None,
        "arrived_at": None,
        "notes": [],
        "summary": None,
        "history": [
            {
                "at": CREATED,
                "by": {"id": "doc-li", "role": "doctor", "org_id": "township_a"},
                "action": "submit",
                "from_status": "draft",
                "to_status": "requested",
                "business_status": "awaiting_triage",
                "reason": None,
                "details": {},
            }
        ],
        "version": 2,
        "created_at": CREATED,
        "updated_at": CREATED + timedelta(minutes=1),
        "accepted_at": None,
        "completed_at": None,
    }


def completed_case() -> dict[str, Any]:
    case = requested_case()
    accepted = CREATED + timedelta(hours=1)
    completed = CREATED + timedelta(days=5)
    case.update(
        status="completed",
        business_status="summary_sent",
        live=False,
        urgency="routine",
        accepted_at=accepted,
        completed_at=completed,
        updated_at=completed,
        version=9,
        preferred_date=date(2025, 3, 20),  # a date object as well as an ISO string
        notes=[
            {
                "note_id": "n1",
                "text": "已完成冠脉造影，LAD 狭窄 80%",
                "author": {"id": "doc-wang", "role": "doctor", "org_id": "county_1"},
                "at": CREATED + timedelta(days=2),
            },
            {"note_id": "n2", "text": "支架术后恢复良好", "author": "doc-wang"},
        ],
        summary={
            "diagnosis": "冠心病 不稳定型心绞痛",
            "treatment": "PCI，LAD 植入支架一枚",
            "recommendations": "双抗血小板治疗12个月",
            "follow_up_advice": "一月后社区复诊，复查血脂",
        },
    )
    return case


def rejected_case() -> dict[str, Any]:
    case = requested_case()
    case.update(status="rejected", business_status="rejected", live=False, version=4)
    case["history"] += [
        {
            "at": CREATED + timedelta(minutes=30),
            "by": {"id": "coord-zhao", "role": "coordinator", "org_id": "county_1"},
            "action": "reject",
            "from_status": "requested",
            "to_status": "requested",
            "business_status": "awaiting_triage",
            "reason": "心内科床位已满",
            "details": {"reason_code": "no_capacity"},
        },
        {
            "at": CREATED + timedelta(minutes=50),
            "by": {"id": "coord-qian", "role": "coordinator", "org_id": "county_2"},
            "action": "reject",
            "from_status": "requested",
            "to_status": "rejected",
            "business_status": "rejected",
            "reason": "无导管室",
            "details": {"reason_code": "wrong_specialty"},
        },
    ]
    return case


def cancelled_case() -> dict[str, Any]:
    case = requested_case()
    case.update(
        status="cancelled",
        business_status="cancelled",
        live=False,
        receiving_org_id=None,
        sending_doctor_id=None,
        urgency="emergency",
        documents=[],
        clinical={},
        preferred_date=None,
    )
    case["history"].append(
        {
            "at": CREATED + timedelta(minutes=5),
            "by": {"id": "doc-li", "role": "doctor", "org_id": "township_a"},
            "action": "cancel",
            "from_status": "requested",
            "to_status": "cancelled",
            "business_status": "cancelled",
            "reason": "患者家属要求转往市级医院",
            "details": {},
        }
    )
    return case


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- Task ---------------------------------------------------------------------------------


def test_a_requested_case_is_a_task_at_the_receiver_with_its_deadline() -> None:
    case = requested_case()
    task = task_of(case)

    assert task["resourceType"] == "Task"
    assert task["id"] == REFERRAL_ID
    assert task["meta"]["versionId"] == "2"
    assert task["status"] == "requested"
    assert task["intent"] == "order"
    assert task["priority"] == "urgent"
    assert task["code"]["coding"][0]["code"] == "fulfill"
    assert task["businessStatus"]["coding"] == [
        {"system": BUSINESS_STATUS_SYSTEM, "code": "awaiting_triage"}
    ]
    assert task["focus"]["reference"] == f"ServiceRequest/{REFERRAL_ID}"
    assert task["for"]["reference"] == f"Patient/{case['patient_id']}"
    assert task["owner"]["reference"] == "Organization/county_1"
    assert instant(task["authoredOn"]) == CREATED
    assert instant(task["lastModified"]) == case["updated_at"]
    assert instant(task["restriction"]["period"]["end"]) == case["due_at"]
    assert "executionPeriod" not in task
    assert "output" not in task
    assert "statusReason" not in task
    assert "note" not in task


def test_the_requester_is_the_referring_doctor_in_their_organization() -> None:
    task = task_of(requested_case())

    assert task["requester"]["reference"] == "#requester"
    (role,) = task["contained"]
    assert role["resourceType"] == "PractitionerRole"
    assert role["id"] == "requester"
    assert role["practitioner"]["display"] == "doc-li"
    assert role["organization"]["reference"] == "Organization/township_a"


def test_without_a_doctor_the_requester_is_the_organization() -> None:
    task = task_of(cancelled_case())

    assert task["requester"]["reference"] == "Organization/township_a"
    assert "contained" not in task
    assert "owner" not in task  # not routed anywhere
    assert task["priority"] == "stat"  # emergency


def test_a_completed_case_carries_its_summary_and_notes() -> None:
    case = completed_case()
    task = task_of(case)

    assert task["status"] == "completed"
    assert task["businessStatus"]["coding"][0]["code"] == "summary_sent"
    assert task["meta"]["versionId"] == "9"
    assert task["priority"] == "routine"
    assert instant(task["executionPeriod"]["start"]) == case["accepted_at"]
    assert instant(task["executionPeriod"]["end"]) == case["completed_at"]
    assert "restriction" not in task  # the acceptance deadline is past business
    outputs = {o["type"]["coding"][0]["code"]: o for o in task["output"]}
    assert list(outputs) == ["diagnosis", "treatment", "recommendations", "follow_up_advice"]
    assert all(o["type"]["coding"][0]["system"] == OUTPUT_SYSTEM for o in outputs.values())
    assert outputs["treatment"]["valueString"] == "PCI，LAD 植入支架一枚"
    assert outputs["follow_up_advice"]["valueString"] == "一月后社区复诊，复查血脂"
    first, second = task["note"]
    assert first["text"] == "已完成冠脉造影，LAD 狭窄 80%"
    assert instant(first["time"]) == CREATED + timedelta(days=2)
    assert first["authorString"] == "doc-wang"
    assert second == {"text": "支架术后恢复良好", "authorString": "doc-wang"}


def test_a_rejected_case_says_why_with_the_last_decline() -> None:
    task = task_of(rejected_case())

    assert task["status"] == "rejected"
    assert task["statusReason"]["text"] == "无导管室"
    assert task["statusReason"]["coding"][0]["code"] == "wrong_specialty"
    assert "restriction" not in task


def test_a_cancelled_case_says_why() -> None:
    task = task_of(cancelled_case())

    assert task["status"] == "cancelled"
    assert task["businessStatus"]["coding"][0]["code"] == "cancelled"
    assert task["statusReason"] == {"text": "患者家属要求转往市级医院"}


def test_base_url_makes_the_focus_absolute() -> None:
    task = task_of(requested_case(), base_url="https://api.example/v1/referrals/fhir/")

    expected = f"https://api.example/v1/referrals/fhir/ServiceRequest/{REFERRAL_ID}"
    assert task["focus"]["reference"] == expected


def test_naive_mongo_datetimes_are_read_as_utc_and_iso_strings_are_read() -> None:
    case = requested_case()
    case["created_at"] = datetime(2025, 3, 17, 1, 30)  # PyMongo without tz_aware
    case["updated_at"] = "2025-03-17T01:31:00Z"
    task = task_of(case)

    assert instant(task["authoredOn"]) == datetime(2025, 3, 17, 1, 30, tzinfo=UTC)
    assert instant(task["lastModified"]) == datetime(2025, 3, 17, 1, 31, tzinfo=UTC)


@pytest.mark.parametrize(
    "status",
    [
        "draft",
        "requested",
        "accepted",
        "in-progress",
        "on-hold",
        "completed",
        "rejected",
        "cancelled",
        "entered-in-error",
    ],
)
def test_every_status_makes_a_task_and_a_service_request_the_library_reads_back(
    status: str,
) -> None:
    case = completed_case()
    case["status"] = status
    task, request = task_of(case), service_request_of(case)

    assert Task.model_validate(task).model_dump(mode="json") == task
    assert ServiceRequest.model_validate(request).model_dump(mode="json") == request
    assert Task.model_validate(task).status == status


# -- ServiceRequest -----------------------------------------------------------------------


def test_the_service_request_is_the_clinical_request() -> None:
    case = requested_case()
    request = service_request_of(case)

    assert request["resourceType"] == "ServiceRequest"
    assert request["id"] == REFERRAL_ID
    assert request["meta"]["versionId"] == "2"
    assert request["status"] == "active"
    assert request["intent"] == "order"
    assert request["priority"] == "urgent"
    assert request["category"][0]["coding"][0] == {
        "system": "http://snomed.info/sct",
        "code": "3457005",
        "display": "Patient referral",
    }
    assert request["code"]["coding"] == [{"system": SPECIALTY_SYSTEM, "code": "cardiology"}]
    assert request["subject"]["reference"] == f"Patient/{case['patient_id']}"
    assert request["encounter"]["identifier"]["value"] == "ENC-2025-0317-0042"
    assert request["requester"]["reference"] == "#requester"
    assert request["performer"] == [{"reference": "Organization/county_1", "type": "Organization"}]
    assert request["reasonCode"][0]["coding"] == [
        {"system": ICD10_SYSTEM, "code": "I20.0", "display": "不稳定型心绞痛"}
    ]
    assert request["occurrenceDateTime"] == "2025-03-20"
    assert instant(request["authoredOn"]) == CREATED
    assert [n["text"] for n in request["note"]] == [
        "反复胸痛三天，需心内科评估及冠脉造影",
        "Chief complaint: 胸痛3天",
    ]
    assert request["extension"] == [
        {
            "url": DIRECTION_EXTENSION,
            "valueCoding": {
                "system": "https://careloop.example/fhir/CodeSystem/referral-direction",
                "code": "upward",
            },
        }
    ]


def test_documents_are_referenced_never_embedded() -> None:
    request = service_request_of(requested_case())

    (document,) = request["supportingInfo"]
    assert document == {
        "type": "DocumentReference",
        "identifier": {
            "system": "urn:ietf:rfc:3986",
            "value": "https://his.township-a.example/docs/ecg/991",
        },
        "display": "ECG 2025-03-17",
    }
    assert "content" not in str(request["supportingInfo"])


def test_nor_is_the_rest_of_the_clinical_summary_sent() -> None:
    text = str(service_request_of(requested_case())) + str(task_of(requested_case()))

    assert "高血压10年" not in text  # history
    assert "硝酸甘油" not in text  # treatment so far
    assert "signature" not in text  # consent


@pytest.mark.parametrize(
    ("status", "request_status"),
    [
        ("draft", "draft"),
        ("requested", "active"),
        ("accepted", "active"),
        ("in-progress", "active"),
        ("on-hold", "on-hold"),
        ("completed", "completed"),
        ("cancelled", "revoked"),
        ("rejected", "revoked"),
        ("entered-in-error", "entered-in-error"),
    ],
)
def test_the_request_status_follows_the_task(status: str, request_status: str) -> None:
    case = requested_case()
    case["status"] = status

    assert service_request_of(case)["status"] == request_status


def test_an_unrouted_case_has_no_performer_and_the_optional_parts_are_left_out() -> None:
    request = service_request_of(cancelled_case())

    assert "performer" not in request
    assert "occurrenceDateTime" not in request
    assert "supportingInfo" not in request
    assert request["requester"] == {"reference": "Organization/township_a", "type": "Organization"}
    assert request["priority"] == "stat"
    assert [n["text"] for n in request["note"]] == ["反复胸痛三天，需心内科评估及冠脉造影"]


# -- validation is real -------------------------------------------------------------------


@pytest.mark.parametrize("build", [task_of, service_request_of])
def test_a_status_that_is_no_fhir_task_status_is_refused(build: Any) -> None:
    case = requested_case()
    case["status"] = "waiting"  # the library checks a code's form, not its value set

    with pytest.raises(ValueError, match="not a FHIR Task status"):
        build(case)


def test_the_library_refuses_what_is_no_task() -> None:
    task = task_of(requested_case())

    for broken in (
        {**task, "status": "in  progress"},  # not a FHIR code
        {k: v for k, v in task.items() if k != "status"},  # status is required
        {**task, "authoredOn": "2025-03-17T09:30:00"},  # a dateTime needs its time zone
        {**task, "focus": f"ServiceRequest/{REFERRAL_ID}"},  # a Reference is an object
        {**task, "urgency": "urgent"},  # no such element
        {**task, "resourceType": "ServiceRequest"},
    ):
        with pytest.raises(ValidationError):
            Task.model_validate(broken)


def test_a_case_that_makes_no_valid_resource_is_refused_by_the_library() -> None:
    case = requested_case()
    case["_id"] = "not a FHIR id"  # spaces: the library checks the id's form

    with pytest.raises(ValidationError):
        task_of(case)
    with pytest.raises(ValidationError):
        service_request_of(case)


def test_the_case_is_not_changed() -> None:
    case = completed_case()
    before = copy.deepcopy(case)
    task_of(case)
    service_request_of(case)

    assert case == before
