"""A transport read as a FHIR R4(B) Task (read-only), as ``fhir.py`` does for referrals.

Task ``status`` says where the request stands (requested, accepted once a porter has it,
in-progress from the porter's acceptance to the hand-over, completed, cancelled,
failed); ``businessStatus`` is the transport's own state (``domain/transport.py``). The
Task is ``for`` the patient, owned by the porter (a staff id), ``basedOn`` the referral of
an inter-facility transfer, and restricted to the pickup deadline while it is open.
Built with ``fhir.resources``' R4B models, which check the shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B.annotation import Annotation
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.task import Task, TaskRestriction

from services.referrals.fhir import CARELOOP, STAFF_SYSTEM, instant

STATE_SYSTEM = f"{CARELOOP}/CodeSystem/transport-state"
KIND_SYSTEM = f"{CARELOOP}/CodeSystem/task-kind"
TASK_STATUS = {
    "requested": "requested",
    "assigned": "accepted",
    "en_route": "in-progress",
    "with_patient": "in-progress",
    "arrived": "in-progress",
    "handed_over": "in-progress",
    "returned": "in-progress",
    "completed": "completed",
    "cancelled": "cancelled",
    "failed": "failed",
}
PRIORITY = {"routine": "routine", "urgent": "urgent", "emergency": "stat"}


def _place(place: Mapping[str, Any]) -> str:
    parts = [place.get(k) for k in ("org_id", "department_id", "ward", "bed", "room")]
    return " / ".join(str(p) for p in parts if p)


def transport_task_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    status = TASK_STATUS[doc["state"]]
    times = doc.get("times") or {}
    started, ended = (
        instant(times.get("en_route")),
        instant(times.get("completed") or times.get("failed") or times.get("cancelled")),
    )
    task = Task(
        id=str(doc["_id"]),
        meta=Meta(versionId=str(doc["version"]), lastUpdated=instant(doc.get("updated_at"))),
        status=status,
        statusReason=(
            CodeableConcept(text=str(doc["reason"]))
            if status in ("failed", "cancelled") and doc.get("reason")
            else None
        ),
        businessStatus=CodeableConcept(
            coding=[Coding(system=STATE_SYSTEM, code=doc["state"])], text=doc["state"]
        ),
        intent="order",
        priority=PRIORITY[doc["priority"]],
        code=CodeableConcept(
            coding=[Coding(system=KIND_SYSTEM, code="patient-transport")],
            text="Patient transport",
        ),
        description=f"{doc['mode']}: {_place(doc['from'])} -> {_place(doc['to'])}",
        basedOn=(
            [Reference(reference=f"ServiceRequest/{doc['referral_id']}", type="ServiceRequest")]
            if doc.get("referral_id")
            else None
        ),
        for_fhir=Reference(reference=f"Patient/{doc['patient_id']}", type="Patient"),
        authoredOn=instant(doc.get("requested_at")),
        lastModified=instant(doc.get("updated_at")),
        requester=Reference(reference=f"Organization/{doc['org_id']}", type="Organization"),
        owner=(
            Reference(
                type="Practitioner",
                identifier=Identifier(system=STAFF_SYSTEM, value=str(doc["porter_id"])),
            )
            if doc.get("porter_id")
            else None
        ),
        executionPeriod=Period(start=started, end=ended) if started or ended else None,
        restriction=(
            TaskRestriction(period=Period(end=instant(doc.get("pickup_due_at"))))
            if status in ("requested", "accepted")
            else None
        ),
        note=[Annotation(text=str(doc["note"]))] if doc.get("note") else None,
    )
    return task.model_dump(mode="json")
