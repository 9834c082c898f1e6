"""The followup service's event that appointments acts on, read tolerantly.

Services do not import each other (docs/architecture.md §2, §5): these are the fields
appointments needs of ``followup.revisit_requested`` (the producer's model is
``RevisitRequested`` in the followup service); anything else it carries is ignored. It is
not registered as an event type: appointments does not publish it.
"""

from __future__ import annotations

from datetime import date

from shared.events import EventPayload

REVISIT_REQUESTED = "careloop.followup.revisit_requested"


class RevisitRequested(EventPayload):
    """A follow-up plan asks for a revisit; ``revisit_request_id`` is unique per ask."""

    revisit_request_id: str
    plan_id: str
    patient_id: str
    org_id: str
    department_id: str | None = None  # None: the ask is rejected (department_required)
    doctor_id: str | None = None  # a doctor (resource id) whose sessions are tried first
    reason: str = ""  # "risk_flag" / "agreed_on_call" / "plan"
    earliest_date: date | None = None
    latest_date: date | None = None  # None: the referral horizon
    flag_id: str | None = None
    task_id: str | None = None
