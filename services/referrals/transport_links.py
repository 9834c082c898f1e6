"""Transports tied to other things that happen: appointments and emergency referrals.

* An exam appointment moved (``appointment.rescheduled``): a transport tied to it
  (``appointment_id``) that has not picked the patient up moves with it (the new
  appointment, its pickup time the lead time before the new start, new deadlines).
* An exam booked with an escort (``appointment.booked`` with ``escort``: a ward's staff
  booking an inpatient who cannot walk): a routine transport from the ward and bed to the
  exam's department and room at the appointment's organization, in the mode and with the
  needs given, picked up the lead time before the start and tied to the appointment (so
  it moves and is cancelled with it); once per appointment, dispatched like any request.
* An appointment cancelled (``appointment.cancelled``): its transport is cancelled, unless
  the porter already has the patient.
* An emergency referral accepted (``referral.accepted``, read back from the referrals
  topic): an ambulance transfer from the sending to the receiving organization is asked
  for, held by the receiving organization (its crews fetch the patient), once per referral.

Each event is handled once (the consumer records it with these changes).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pydantic import ValidationError

from services.referrals.case_changes import SYSTEM
from services.referrals.domain.transport import CANCELLABLE, MOVABLE
from services.referrals.domain.transport_request import TransportIn
from services.referrals.store import TRANSPORTS
from services.referrals.transport_changes import save_transport
from services.referrals.transports import Transports
from shared.events import Envelope
from shared.mongo import Database
from shared.outbox import Tx

log = structlog.get_logger("careloop.referrals.transport_links")

ACCEPTED_TRIGGER = "referral.accepted"
BOOKED_TRIGGER = "appointment.booked"
# the booking's escort modes in the transports' vocabulary (the rest are the same words)
ESCORT_MODES = {"walk_with_escort": "walk_escort"}


def _aware(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class TransportLinks:
    def __init__(self, db: Database, transports: Transports) -> None:
        self.db = db
        self.transports = transports
        self.clock = transports.clock
        self.lead = timedelta(minutes=transports.settings.transport_lead_minutes)

    async def appointment_rescheduled(self, event: Envelope, tx: Tx) -> None:
        data = event.data
        previous = data.get("previous_appointment_id")
        if not previous:
            return
        query = {"appointment_id": previous, "state": {"$in": sorted(MOVABLE)}}
        for doc in await self.db[TRANSPORTS].find(query, session=tx.session).to_list():
            starts = _aware(data["starts_at"])
            pickup_at = starts - self.lead
            response_due, pickup_due = self.clock.due(doc["priority"], datetime.now(UTC), pickup_at)
            after = await save_transport(
                self.db,
                tx,
                doc,
                None,
                "appointment_rescheduled",
                fields={
                    "appointment_id": data["appointment_id"],
                    "appointment_starts_at": starts,
                    "pickup_at": pickup_at,
                    "response_due_at": response_due,
                    "pickup_due_at": pickup_due,
                    "escalated": {},
                },
                details={"appointment_id": data["appointment_id"], "previous": previous},
            )
            await self.clock.arm(tx, after)

    async def appointment_booked(self, event: Envelope, tx: Tx) -> None:
        """An exam booked with an escort: the transport there, once per appointment."""
        data = event.data
        escort = data.get("escort")
        if not escort:
            return
        key = f"{BOOKED_TRIGGER}:{data['appointment_id']}"
        if await self.db[TRANSPORTS].count_documents({"trigger_key": key}, session=tx.session):
            return
        org_id = data["org_id"]
        mode = str(escort.get("mode"))
        room = str(data.get("resource_name") or "")[:60] or None
        try:
            body = self._escort(data, escort, ESCORT_MODES.get(mode, mode), room)
        except ValidationError as exc:  # the booking stands (its numbers, the saga): log it
            log.error(
                "transport.escort_unreadable",
                appointment_id=data["appointment_id"],
                error=str(exc)[:300],
            )
            return
        doc = self.transports.new_document(
            body,
            org_id=org_id,
            from_org=org_id,
            to_org=org_id,
            by=dict(SYSTEM),
            role="system",
            trigger_key=key,
        )
        await self.transports.create(tx, doc, "system")

    @staticmethod
    def _escort(
        data: dict[str, Any], escort: dict[str, Any], mode: str, room: str | None
    ) -> TransportIn:
        return TransportIn.model_validate(
            {
                "patient_id": data["patient_id"],
                "org_id": data["org_id"],
                "from": {"ward": escort.get("from_ward"), "bed": escort.get("from_bed")},
                "to": {"department_id": data["department_id"], "room": room},
                "mode": mode,
                "needs": escort.get("needs") or [],
                "priority": "routine",
                "appointment_id": data["appointment_id"],
                "appointment_starts_at": _aware(data["starts_at"]),
                "note": f"escort to the booked exam ({room or 'exam'})",
            }
        )

    async def appointment_cancelled(self, event: Envelope, tx: Tx) -> None:
        data = event.data
        query = {"appointment_id": data["appointment_id"], "state": {"$in": sorted(CANCELLABLE)}}
        why = f"appointment cancelled ({data.get('reason') or 'no reason given'})"
        for doc in await self.db[TRANSPORTS].find(query, session=tx.session).to_list():
            await self.transports.cancel_in(tx, doc, None, why)

    async def referral_accepted(self, event: Envelope, tx: Tx) -> None:
        """An accepted emergency referral: the ambulance transfer between the two."""
        data = event.data
        receiving = data.get("receiving_org_id")
        if data.get("urgency") != "emergency" or not receiving:
            return
        key = f"{ACCEPTED_TRIGGER}:{data['referral_id']}"
        if await self.db[TRANSPORTS].count_documents({"trigger_key": key}, session=tx.session):
            return
        body = TransportIn.model_validate(
            {
                "patient_id": data["patient_id"],
                "from": {
                    "org_id": data["sending_org_id"],
                    "department_id": data.get("sending_department_id"),
                },
                "to": {"org_id": receiving, "department_id": data.get("receiving_department_id")},
                "mode": "ambulance",
                "priority": "emergency",
                "referral_id": data["referral_id"],
                "note": "inter-facility transfer of an accepted emergency referral",
            }
        )
        doc = self.transports.new_document(
            body,
            org_id=receiving,
            from_org=data["sending_org_id"],
            to_org=receiving,
            by=dict(SYSTEM),
            role="system",
            trigger_key=key,
        )
        await self.transports.create(tx, doc, "system")
