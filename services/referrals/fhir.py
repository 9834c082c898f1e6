"""A referral case as FHIR resources: the Task that tracks it and the ServiceRequest it fulfils.

Pure functions from the stored case (the document of ``referral_cases``, see
:mod:`services.referrals.domain.case`) to FHIR JSON, for partners that speak FHIR (a HIS, a
regional platform). Read-only: nothing here is written back.

The models are ``fhir.resources``' **R4B** ones (FHIR 4.3.0, ``fhir.resources.R4B``): the
library ships R5 and R4B, not R4 (4.0.1) itself. R4B's Task and ServiceRequest are
R4-compatible: the elements used here (and the Task status codes the store already uses)
are the same in R4 and R4B, so an R4 client reads what this module writes. Every resource is
built with the library's models, so the library checks the types, the required elements,
the primitive formats (ids, codes, dateTimes with a time zone) and unknown elements; it
does not check codes against their value sets, so the two status codes are checked here.

The shape follows FHIR's workflow pattern for referrals (Task ``code`` ``fulfill`` whose
``focus`` is the ServiceRequest, as in the HL7 eReferral guides): the Task carries the
workflow (``status``, ``businessStatus``, owner, deadline, notes, the summary as outputs),
the ServiceRequest the clinical request (who, why, which specialty, when, documents).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from fhir.resources.R4B.annotation import Annotation
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.practitionerrole import PractitionerRole
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task, TaskOutput, TaskRestriction

CARELOOP = "https://careloop.example/fhir"
BUSINESS_STATUS_SYSTEM = f"{CARELOOP}/CodeSystem/referral-business-status"
SPECIALTY_SYSTEM = f"{CARELOOP}/CodeSystem/specialty"
DIRECTION_SYSTEM = f"{CARELOOP}/CodeSystem/referral-direction"
DIRECTION_EXTENSION = f"{CARELOOP}/StructureDefinition/referral-direction"
OUTPUT_SYSTEM = f"{CARELOOP}/CodeSystem/referral-output"
REASON_SYSTEM = f"{CARELOOP}/CodeSystem/referral-status-reason"
STAFF_SYSTEM = f"{CARELOOP}/NamingSystem/staff-id"
ENCOUNTER_SYSTEM = f"{CARELOOP}/NamingSystem/his-encounter"
ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
SNOMED = "http://snomed.info/sct"
TASK_CODE_SYSTEM = "http://hl7.org/fhir/CodeSystem/task-code"
URI_IDENTIFIER = "urn:ietf:rfc:3986"

# http://hl7.org/fhir/R4/valueset-task-status.html (the same codes in R4B)
TASK_STATUSES = frozenset(
    {
        "draft",
        "requested",
        "received",
        "accepted",
        "rejected",
        "ready",
        "cancelled",
        "in-progress",
        "on-hold",
        "failed",
        "completed",
        "entered-in-error",
    }
)
# the case's Task status -> the ServiceRequest's (http://hl7.org/fhir/R4/valueset-request-status.html)
REQUEST_STATUS = {
    "draft": "draft",
    "requested": "active",
    "accepted": "active",
    "in-progress": "active",
    "on-hold": "on-hold",
    "completed": "completed",
    "cancelled": "revoked",
    "rejected": "revoked",
    "entered-in-error": "entered-in-error",
}
# the case's urgency -> request priority (routine | urgent | asap | stat)
PRIORITY = {"routine": "routine", "urgent": "urgent", "emergency": "stat"}
# the summary's parts, in order, as Task outputs
OUTPUTS = {
    "diagnosis": "Discharge diagnosis",
    "treatment": "Treatment given",
    "recommendations": "Recommendations",
    "follow_up_advice": "Follow-up advice",
}
REQUESTER = "requester"  # the local id of the contained PractitionerRole


def task_of(case: Mapping[str, Any], *, base_url: str = "") -> dict[str, Any]:
    """The FHIR R4(B) Task of a referral case, as JSON.

    ``base_url`` (the FHIR base these resources are served under) makes ``focus`` an
    absolute reference; left empty, references are relative to the server's base.
    Raises ``ValueError`` (a pydantic ``ValidationError`` among them) for a case that does
    not make a valid Task.
    """
    referral_id = str(case["_id"])
    status = _task_status(case)
    focus = f"ServiceRequest/{referral_id}"
    if base_url:
        focus = f"{base_url.rstrip('/')}/{focus}"
    contained, requester = _requester(case)
    accepted_at = _instant(case.get("accepted_at"))
    completed_at = _instant(case.get("completed_at"))
    due_at = _instant(case.get("due_at"))
    task = Task(
        id=referral_id,
        meta=_meta(case),
        contained=contained or None,
        status=status,
        statusReason=_status_reason(case, status),
        businessStatus=_business_status(case),
        intent="order",
        priority=_priority(case),
        code=CodeableConcept(
            coding=[
                Coding(system=TASK_CODE_SYSTEM, code="fulfill", display="Fulfill the focal request")
            ]
        ),
        focus=Reference(reference=focus, type="ServiceRequest"),
        for_fhir=_patient(case),
        authoredOn=_instant(case.get("created_at")),
        lastModified=_instant(case.get("updated_at")),
        requester=requester,
        owner=_org(case.get("receiving_org_id")),
        executionPeriod=(
            Period(start=accepted_at, end=completed_at) if accepted_at or completed_at else None
        ),
        restriction=(
            TaskRestriction(period=Period(end=due_at))
            if status == "requested" and due_at is not None
            else None
        ),
        output=_outputs(case.get("summary")) or None,
        note=[_annotation(n) for n in _texts(case.get("notes")) if n.get("text")] or None,
    )
    return task.model_dump(mode="json")


def service_request_of(case: Mapping[str, Any]) -> dict[str, Any]:
    """The FHIR R4(B) ServiceRequest of a referral case (what was asked for), as JSON.

    Raises ``ValueError`` (a pydantic ``ValidationError`` among them) for a case that does
    not make a valid ServiceRequest.
    """
    status = _task_status(case)
    contained, requester = _requester(case)
    diagnosis = case.get("diagnosis") or {}
    specialty = str(case["specialty"])
    clinical = case.get("clinical") or {}
    notes = [
        Annotation(text=text)
        for text in (
            case.get("reason"),
            f"Chief complaint: {clinical['chief_complaint']}"
            if clinical.get("chief_complaint")
            else None,
        )
        if text
    ]
    request = ServiceRequest(
        id=str(case["_id"]),
        meta=_meta(case),
        contained=contained or None,
        extension=_direction(case.get("direction")),
        status=REQUEST_STATUS[status],
        intent="order",
        category=[
            CodeableConcept(
                coding=[Coding(system=SNOMED, code="3457005", display="Patient referral")],
                text="Referral",
            )
        ],
        priority=_priority(case),
        code=CodeableConcept(
            coding=[Coding(system=SPECIALTY_SYSTEM, code=specialty)],
            text=specialty.replace("_", " "),
        ),
        subject=_patient(case),
        encounter=(
            Reference(
                type="Encounter",
                identifier=Identifier(system=ENCOUNTER_SYSTEM, value=str(case["episode_id"])),
            )
            if case.get("episode_id")
            else None
        ),
        occurrenceDateTime=_day(case.get("preferred_date")),
        authoredOn=_instant(case.get("created_at")),
        requester=requester,
        performer=[p] if (p := _org(case.get("receiving_org_id"))) else None,
        reasonCode=(
            [
                CodeableConcept(
                    coding=[
                        Coding(
                            system=ICD10_SYSTEM,
                            code=str(diagnosis["code"]),
                            display=diagnosis.get("text") or None,
                        )
                    ],
                    text=diagnosis.get("text") or None,
                )
            ]
            if diagnosis.get("code")
            else None
        ),
        supportingInfo=[_document(d) for d in _texts(case.get("documents")) if d.get("uri")]
        or None,
        note=notes or None,
    )
    return request.model_dump(mode="json")


# -- the parts ---------------------------------------------------------------------------


def _task_status(case: Mapping[str, Any]) -> str:
    status = str(case["status"])
    if status not in TASK_STATUSES or status not in REQUEST_STATUS:
        raise ValueError(f"{status!r} is not a FHIR Task status a referral case has")
    return status


def _meta(case: Mapping[str, Any]) -> Meta | None:
    version, updated = case.get("version"), _instant(case.get("updated_at"))
    if version is None and updated is None:
        return None
    return Meta(versionId=None if version is None else str(version), lastUpdated=updated)


def _patient(case: Mapping[str, Any]) -> Reference:
    return Reference(reference=f"Patient/{case['patient_id']}", type="Patient")


def _org(org_id: object) -> Reference | None:
    if not org_id:
        return None
    return Reference(reference=f"Organization/{org_id}", type="Organization")


def _requester(case: Mapping[str, Any]) -> tuple[list[PractitionerRole], Reference | None]:
    """Who asks: the referring doctor in their organization (a contained PractitionerRole)
    when the doctor is known, else the referring organization."""
    org = _org(case.get("sending_org_id"))
    doctor = case.get("sending_doctor_id")
    if not doctor:
        return [], org
    role = PractitionerRole(
        id=REQUESTER,
        practitioner=Reference(
            type="Practitioner",
            identifier=Identifier(system=STAFF_SYSTEM, value=str(doctor)),
            display=str(doctor),
        ),
        organization=org,
    )
    return [role], Reference(reference=f"#{REQUESTER}", type="PractitionerRole")


def _priority(case: Mapping[str, Any]) -> str:
    return PRIORITY[str(case.get("urgency") or "routine")]


def _business_status(case: Mapping[str, Any]) -> CodeableConcept | None:
    code = case.get("business_status")
    if not code:
        return None
    return CodeableConcept(
        coding=[Coding(system=BUSINESS_STATUS_SYSTEM, code=str(code))],
        text=str(code).replace("_", " "),
    )


def _status_reason(case: Mapping[str, Any], status: str) -> CodeableConcept | None:
    """Why a case was rejected or cancelled: the reason of the history entry that ended it
    (for a rejection, the last receiver's decline)."""
    if status not in ("rejected", "cancelled"):
        return None
    action = "reject" if status == "rejected" else "cancel"
    for entry in reversed(list(_texts(case.get("history")))):
        if entry.get("action") != action and entry.get("to_status") != status:
            continue
        details = entry.get("details") or {}
        code = details.get("reason_code") if isinstance(details, Mapping) else None
        text = entry.get("reason")
        if not (code or text):
            continue
        return CodeableConcept(
            coding=[Coding(system=REASON_SYSTEM, code=str(code))] if code else None,
            text=str(text) if text else None,
        )
    return None


def _outputs(summary: object) -> list[TaskOutput]:
    """The summary that closes the loop, one output a part."""
    if not isinstance(summary, Mapping):
        return []
    return [
        TaskOutput(
            type=CodeableConcept(
                coding=[Coding(system=OUTPUT_SYSTEM, code=key, display=display)], text=display
            ),
            valueString=str(summary[key]),
        )
        for key, display in OUTPUTS.items()
        if summary.get(key)
    ]


def _annotation(note: Mapping[str, Any]) -> Annotation:
    author = note.get("author")
    if isinstance(author, Mapping):
        author = author.get("id")
    return Annotation(
        text=str(note["text"]),
        time=_instant(note.get("at") or note.get("created_at")),
        authorString=str(author) if author else None,
    )


def _document(doc: Mapping[str, Any]) -> Reference:
    """A document held elsewhere: its title and address, never its content."""
    return Reference(
        type="DocumentReference",
        identifier=Identifier(system=URI_IDENTIFIER, value=str(doc["uri"])),
        display=str(doc.get("title") or doc.get("kind") or "document"),
    )


def _direction(direction: object) -> list[Extension] | None:
    if not direction:
        return None
    return [
        Extension(
            url=DIRECTION_EXTENSION,
            valueCoding=Coding(system=DIRECTION_SYSTEM, code=str(direction)),
        )
    ]


def _texts(items: object) -> Iterable[Mapping[str, Any]]:
    """The mappings of a list field (notes, documents, history), skipping anything else."""
    if not isinstance(items, list):
        return ()
    return [i for i in items if isinstance(i, Mapping)]


def _instant(value: object) -> datetime | None:
    """An aware datetime: Mongo's naive datetimes are UTC; ISO strings are read."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise ValueError(f"not a datetime: {value!r}")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


instant = _instant  # shared with transport_fhir.py


def _day(value: object) -> date | None:
    """A calendar date from a date, a datetime or an ISO string."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    raise ValueError(f"not a date: {value!r}")
