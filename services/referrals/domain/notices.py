"""Who among the staff is told of a change to a referral (pure rules).

Patients hear from notifications; staff find a notice in their referral notices (the
coordinator's desk and the referring doctor's list), written with the change itself:

* the receiving organization's coordinators: a case offered to them (routed, re-routed,
  routed by hand), a deadline passed (escalated), a booking refused (pick another date);
* the referring doctor (and the referring organization's coordinators): an interim note,
  the summary that closes the loop, a case no organization could take.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RECEIVER_ACTIONS = {
    "route": "new_referral",
    "reroute": "new_referral",
    "override_route": "new_referral",
    "submit": "new_referral",
    "sla_escalated": "deadline_passed",
    "booking_rejected": "booking_failed",
}
SENDER_ACTIONS = {
    "add_note": "interim_note",
    "complete": "summary_sent",
}


@dataclass(frozen=True)
class Notice:
    kind: str
    org_id: str
    doctor_id: str | None  # None: the organization's coordinators

    def to_document(self, case: dict[str, Any]) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "org_id": self.org_id,
            "doctor_id": self.doctor_id,
            "referral_id": case["_id"],
            "patient_id": case["patient_id"],
            "urgency": case["urgency"],
            "status": case["status"],
            "business_status": case["business_status"],
        }


def notices_for(action: str, case: dict[str, Any]) -> list[Notice]:
    """The notices one change writes (``case`` as it is after the change)."""
    if action in RECEIVER_ACTIONS and case.get("receiving_org_id"):
        return [Notice(RECEIVER_ACTIONS[action], case["receiving_org_id"], None)]
    kind = SENDER_ACTIONS.get(action)
    if kind is None and action in ("reject", "sla_timeout") and case["status"] == "rejected":
        kind = "not_placed"
    if kind is None:
        return []
    doctor = case.get("sending_doctor_id")
    notices = [Notice(kind, case["sending_org_id"], None)]
    if doctor:
        notices.append(Notice(kind, case["sending_org_id"], doctor))
    return notices
