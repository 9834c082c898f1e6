"""A bed over a stay, from the HIS's JSON events on ``careloop.his`` (the followup service
consumes the same events on its own; neither imports the other).

Read tolerantly (``services/followup/his_events.py`` defines the payloads): the patient is
``patient_id``, else the ``national_id`` (matched by keyed hash); ``org_id`` is required.
For beds the HIS may add two optional fields (not yet in ``his_events.py``):

* ``bed_id``: CareLoop's bed id (as ``bed.offered`` carried it) or the HIS's bed code;
* ``ward_id``: the HIS's ward code (or CareLoop's ``<org>.<code>``), with a bed code.

HL7 admissions and discharges come as ``followup.adt.received`` (:meth:`BedStays.adt_received`).

``careloop.his.admitted``: the bed (named, else the one of the patient's confirmed or open
offer) becomes ``occupied``; the offer and the admission notice ``admitted`` (the wait is
recorded for the figures). ``careloop.his.discharge``: the patient's bed becomes
``cleaning``; housekeeping's ``POST .../beds/{id}/cleaned`` frees it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog

from services.appointments.admission_notices import ACTIVE, NoticeStatus
from services.appointments.bed_offer_states import OfferStatus, offer_job_key
from services.appointments.beds import Beds, ward_id
from services.appointments.domain.bed_rules import BedStatus
from services.appointments.patients import Patients
from services.appointments.store import ADMISSION_NOTICES, BED_OFFERS, BEDS
from shared.events import Envelope
from shared.jobs import cancel_job
from shared.mongo import Database, Document
from shared.outbox import Tx

log = structlog.get_logger(__name__)
HIS_ADMITTED = "careloop.his.admitted"
HIS_DISCHARGE = "careloop.his.discharge"
# the same for HL7: followup (the alliance's HL7 interface) tells each accepted A01 / A03
ADT_RECEIVED = "careloop.followup.adt.received"
UNDISCHARGED = {"discharged_at": {"$exists": False}}


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def _moment(data: dict[str, Any], key: str) -> datetime:
    value = data.get(key)
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        return datetime.now(UTC)
    return moment


class BedStays:
    def __init__(self, db: Database, beds: Beds, patients: Patients) -> None:
        self.db = db
        self.beds = beds
        self.patients = patients

    async def _patient_id(self, data: dict[str, Any]) -> str | None:
        if (pid := _text(data, "patient_id")) is not None:
            return pid
        if (national_id := _text(data, "national_id")) is not None:
            try:
                doc = await self.patients.find_by_national_id(national_id)
            except ValueError:
                return None
            return None if doc is None else str(doc["_id"])
        return None

    async def _named_bed(self, tx: Tx, org_id: str, data: dict[str, Any]) -> Document | None:
        bed_ref, ward_ref = _text(data, "bed_id"), _text(data, "ward_id")
        if bed_ref is None:
            return None
        found = await self.db[BEDS].find_one({"_id": bed_ref, "org_id": org_id}, session=tx.session)
        if found is not None or ward_ref is None:
            return found
        wid = ward_ref if ward_ref.startswith(f"{org_id}.") else ward_id(org_id, ward_ref)
        return await self.db[BEDS].find_one({"ward_id": wid, "code": bed_ref}, session=tx.session)

    async def admitted(self, event: Envelope, tx: Tx) -> None:
        data = dict(event.data)
        org_id, patient_id = _text(data, "org_id"), await self._patient_id(data)
        if org_id is None or patient_id is None:
            log.info("bed.his_admitted_skipped", event_id=event.id, why="no org or patient")
            return
        at = _moment(data, "admitted_at")
        session = tx.session
        mine = {"org_id": org_id, "patient_id": patient_id}
        offer = await self.db[BED_OFFERS].find_one(
            {**mine, "status": {"$in": [OfferStatus.CONFIRMED.value, OfferStatus.OFFERED.value]}},
            sort=[("created_at", -1)],
            session=session,
        )
        bed = await self._named_bed(tx, org_id, data)
        if bed is None and offer is not None:
            bed = await self.beds.get(offer["bed_id"], session)
        if bed is not None:
            if bed["status"] == BedStatus.RESERVED and bed.get("patient_id") != patient_id:
                log.warning("bed.his_admitted_reserved_for_other", bed_id=bed["_id"])
            else:
                expect = [BedStatus.FREE, BedStatus.RESERVED, BedStatus.CLEANING]
                await self.beds.change(
                    tx, bed["_id"], expect, BedStatus.OCCUPIED, "admitted", patient_id=patient_id
                )
        if offer is not None:
            if bed is not None and bed["_id"] != offer["bed_id"]:  # admitted to another bed
                held = {"offer_id": offer["_id"]}
                await self.beds.change(
                    tx, offer["bed_id"], [BedStatus.RESERVED], BedStatus.FREE, "his", where=held
                )
            await self.db[BED_OFFERS].update_one(
                {"_id": offer["_id"]},
                {"$set": {"status": OfferStatus.ADMITTED.value, "admitted_at": at}},
                session=session,
            )
            await cancel_job(self.db, session, offer_job_key(offer["_id"]))
        notice = await self.db[ADMISSION_NOTICES].find_one(
            {**mine, "status": {"$in": ACTIVE}}, sort=[("issued_at", 1)], session=session
        )
        if notice is not None:
            wait = max((at - notice["issued_at"]).total_seconds(), 0.0)
            await self.db[ADMISSION_NOTICES].update_one(
                {"_id": notice["_id"]},
                {
                    "$set": {
                        "status": NoticeStatus.ADMITTED.value,
                        "active": False,
                        "admitted_at": at,
                        "wait_seconds": wait,
                        "bed_id": bed["_id"] if bed else None,
                        "borrowed": bool(offer and offer.get("borrowed")),
                    },
                    "$inc": {"version": 1},
                },
                session=session,
            )
        log.info("bed.his_admitted", patient_id=patient_id, bed_id=bed["_id"] if bed else None)

    async def adt_received(self, event: Envelope, tx: Tx) -> None:
        """An HL7 admission (A01) or discharge (A03), as followup accepted it: PV1-3's ward
        and bed name the bed; the patient is the one followup matched (else skipped)."""
        data = dict(event.data)
        common = {
            "org_id": data.get("org_id"),
            "patient_id": data.get("patient_id"),
            "ward_id": data.get("ward_id"),
            "bed_id": data.get("bed"),
        }
        at = data.get("at")
        if data.get("trigger") == "A01":
            await self.admitted(
                event.model_copy(update={"data": {**common, "admitted_at": at}}), tx
            )
        elif data.get("trigger") == "A03":
            moved = {**common, "discharged_at": at}
            await self.discharged(event.model_copy(update={"data": moved}), tx)

    async def discharged(self, event: Envelope, tx: Tx) -> None:
        data = dict(event.data)
        org_id, patient_id = _text(data, "org_id"), await self._patient_id(data)
        if org_id is None or patient_id is None:
            log.info("bed.his_discharge_skipped", event_id=event.id, why="no org or patient")
            return
        bed = await self._named_bed(tx, org_id, data)
        if bed is None:
            bed = await self.db[BEDS].find_one(
                {"org_id": org_id, "patient_id": patient_id, "status": BedStatus.OCCUPIED.value},
                session=tx.session,
            )
        if bed is None:
            log.info("bed.his_discharge_no_bed", patient_id=patient_id)
            return
        await self.beds.change(
            tx, bed["_id"], [BedStatus.OCCUPIED], BedStatus.CLEANING, "discharged"
        )
        await self.db[ADMISSION_NOTICES].update_one(
            {**{"org_id": org_id, "patient_id": patient_id, "bed_id": bed["_id"]}, **UNDISCHARGED},
            {"$set": {"discharged_at": _moment(data, "discharged_at")}},
            session=tx.session,
        )
