"""The referral's side of the booking saga with appointments (docs/adr/0006-referrals.md).

``referral.accepted`` / ``referral.booking_requested`` ask appointments for a visit; the
replies arrive here:

* ``appointment.booked`` (with this referral's id): the case is in progress, ``booked``,
  with the time and place. If the case was cancelled meanwhile, the booking is orphaned:
  ``referral.cancelled`` is sent again with its appointment id, and appointments cancels it.
* ``appointment.booking.rejected``: ``booking_failed`` with the reason; the receiving
  coordinator picks another date or department (``request_booking``): the case never hangs.
* ``appointment.checked_in``: ``arrived``; ``appointment.no_show``: ``no_show``.
* ``appointment.cancelled`` (not by the referral itself): ``booking_cancelled``, back to
  accepted, to be booked again; ``appointment.rescheduled``: the new time.

Each event is handled once (the consumer records it in the same transaction); a reply
to an older booking ask than the case's current one changes nothing.
"""

from __future__ import annotations

from typing import Any

from services.referrals.case_changes import facts, save_change
from services.referrals.domain.workflow import BusinessStatus, TaskStatus
from services.referrals.events import ReferralCancelled, ReferralScheduled
from services.referrals.store import CASES
from shared.events import Envelope, make_event
from shared.mongo import Database, Document
from shared.outbox import Tx

CANCELLED_BY_REFERRAL = "referral_cancelled"


class BookingSaga:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def _case(self, data: dict[str, Any], tx: Tx) -> Document | None:
        referral_id = data.get("referral_id")
        if not referral_id:
            return None
        doc: Document | None = await self.db[CASES].find_one(
            {"_id": referral_id}, session=tx.session
        )
        return doc

    @staticmethod
    def _current_ask(doc: Document, data: dict[str, Any]) -> bool:
        """The reply answers the case's current booking ask (or names none)."""
        asked = (doc.get("booking") or {}).get("booking_request_id")
        answered = data.get("booking_request_id")
        return answered is None or asked is None or answered == asked

    async def booked(self, event: Envelope, tx: Tx) -> None:
        data = event.data
        doc = await self._case(data, tx)
        if doc is None:
            return
        if doc["status"] in (TaskStatus.CANCELLED.value, TaskStatus.ENTERED_IN_ERROR.value):
            payload = ReferralCancelled(
                **facts(doc),
                reason="the referral was cancelled before its booking was made",
                appointment_id=data["appointment_id"],
            )
            tx.emit(make_event(payload, source="referrals", subject=doc["patient_id"]))
            return
        if doc["status"] != TaskStatus.ACCEPTED.value or not self._current_ask(doc, data):
            return
        booking = {
            **(doc.get("booking") or {}),
            "status": "booked",
            "appointment_id": data["appointment_id"],
            "starts_at": data["starts_at"],
            "ends_at": data.get("ends_at"),
            "department_id": data["department_id"],
            "department_name": data.get("department_name"),
            "resource_name": data.get("resource_name"),
            "number": data.get("number"),
            "reason": None,
        }
        await save_change(
            self.db,
            tx,
            doc,
            None,
            "booked",
            status=TaskStatus.IN_PROGRESS.value,
            business_status=BusinessStatus.BOOKED.value,
            fields={"booking": booking},
            details={"appointment_id": data["appointment_id"]},
            event=ReferralScheduled,
            event_fields={"appointment_id": data["appointment_id"], "starts_at": data["starts_at"]},
        )

    async def booking_rejected(self, event: Envelope, tx: Tx) -> None:
        data = event.data
        doc = await self._case(data, tx)
        if doc is None or doc["status"] != TaskStatus.ACCEPTED.value:
            return
        if not self._current_ask(doc, data):
            return
        booking = {
            **(doc.get("booking") or {}),
            "status": "rejected",
            "reason": data.get("reason"),
            "code": data.get("code"),
        }
        await save_change(
            self.db,
            tx,
            doc,
            None,
            "booking_rejected",
            business_status=BusinessStatus.BOOKING_FAILED.value,
            fields={"booking": booking},
            reason=data.get("reason"),
            details={"code": data.get("code")},
        )

    async def _visit(self, event: Envelope, tx: Tx, action: str, business: BusinessStatus) -> None:
        data = event.data
        doc = await self._case(data, tx)
        if doc is None or doc["status"] != TaskStatus.IN_PROGRESS.value:
            return
        if (doc.get("booking") or {}).get("appointment_id") != data["appointment_id"]:
            return
        fields = {"arrived_at": event.time} if business is BusinessStatus.ARRIVED else {}
        await save_change(
            self.db,
            tx,
            doc,
            None,
            action,
            business_status=business.value,
            fields=fields,
            details={"appointment_id": data["appointment_id"]},
        )

    async def checked_in(self, event: Envelope, tx: Tx) -> None:
        await self._visit(event, tx, "arrived", BusinessStatus.ARRIVED)

    async def no_show(self, event: Envelope, tx: Tx) -> None:
        await self._visit(event, tx, "no_show", BusinessStatus.NO_SHOW)

    async def cancelled(self, event: Envelope, tx: Tx) -> None:
        data = event.data
        if data.get("reason") == CANCELLED_BY_REFERRAL:
            return
        doc = await self._case(data, tx)
        if doc is None or doc["status"] != TaskStatus.IN_PROGRESS.value:
            return
        booking = doc.get("booking") or {}
        if booking.get("appointment_id") != data["appointment_id"]:
            return
        await save_change(
            self.db,
            tx,
            doc,
            None,
            "booking_cancelled",
            status=TaskStatus.ACCEPTED.value,
            business_status=BusinessStatus.BOOKING_CANCELLED.value,
            fields={"booking": {**booking, "status": "cancelled", "reason": data.get("reason")}},
            reason=data.get("reason"),
        )

    async def rescheduled(self, event: Envelope, tx: Tx) -> None:
        data = event.data
        doc = await self._case(data, tx)
        if doc is None or doc["status"] != TaskStatus.IN_PROGRESS.value:
            return
        booking = doc.get("booking") or {}
        if booking.get("appointment_id") != data.get("previous_appointment_id"):
            return
        moved = {
            **booking,
            "appointment_id": data["appointment_id"],
            "starts_at": data["starts_at"],
            "ends_at": data.get("ends_at"),
        }
        await save_change(
            self.db,
            tx,
            doc,
            None,
            "booking_rescheduled",
            fields={"booking": moved},
            details={"appointment_id": data["appointment_id"]},
        )
