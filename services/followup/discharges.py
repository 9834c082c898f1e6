"""Discharge records: one per discharge message, whichever way it came in (HL7 over MLLP
or HTTP, JSON on ``careloop.his``), matched to a real-name patient and planned.

* **Who the patient is.** A patient id the HIS already knows, else the PID-3 national ID
  by keyed hash in appointments' patients (``patients.py``). The national ID itself is not
  kept: its keyed hash and a masked form are.
* **Unknown patients** wait (``awaiting_match``) for a staff match (audited), or for the
  patient's registration in appointments, which matches them by hash.
* **Death.** A discharge of a patient who died plans nothing and ends the patient's plans.
* **Survey.** A planned discharge is also surveyed for satisfaction later (``surveys.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from services.followup.patients import KnownPatients
from services.followup.plans import Plans, PlanStart
from services.followup.store import DISCHARGES, IDENTITY_MEETINGS
from shared.audit import AuditLog
from shared.domain_errors import Conflict, NotFound
from shared.ids import new_id
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.principal import Principal
from shared.privacy import mask_name, mask_national_id
from shared.scoping import ensure_org, org_filter


@dataclass(frozen=True)
class DischargeFacts:
    """A discharge as any channel tells it."""

    org_id: str
    discharged_at: datetime
    visit_id: str | None = None
    department_id: str | None = None
    doctor_id: str | None = None
    patient_id: str | None = None  # when the HIS knows CareLoop's id
    national_id: str | None = None  # read from PID-3; never stored
    name: str | None = None  # stored masked only
    identifiers: Sequence[dict[str, Any]] = field(default_factory=tuple)  # MRN etc.
    diagnosis_codes: Sequence[str] = field(default_factory=tuple)
    deceased: bool = False


class SurveyDesk(Protocol):
    """What discharges need of surveys (``surveys.py``): survey the stay later."""

    async def after_discharge(self, tx: Tx, discharge: Document) -> None: ...


def discharge_not_found(discharge_id: str) -> NotFound:
    return NotFound(
        "discharge_not_found", f"no discharge {discharge_id!r}", detail_zh="出院记录不存在"
    )


class Discharges:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        patients: KnownPatients,
        plans: Plans,
        audit: AuditLog,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.patients = patients
        self.plans = plans
        self.audit = audit
        self.surveys: SurveyDesk | None = None  # set by the bootstrap

    async def record(self, tx: Tx, intake_id: str, channel: str, facts: DischargeFacts) -> Document:
        """Keep the discharge, find its patient and plan it (in the caller's transaction)."""
        hashes = self.patients.national_id_hashes(facts.national_id) if facts.national_id else []
        if hashes:
            await self.meet(tx, hashes[0])
        patient_id = facts.patient_id
        if patient_id is not None and not await self.patients.exists(patient_id, tx.session):
            patient_id = None  # an id appointments never registered: staff match it
        if patient_id is None and hashes:
            patient_id = await self.patients.find_by_hashes(hashes, tx.session)
        now = datetime.now(UTC)
        doc: Document = {
            "_id": new_id(),
            "intake_id": intake_id,
            "channel": channel,
            "org_id": facts.org_id,
            "visit_id": facts.visit_id,
            "department_id": facts.department_id,
            "doctor_id": facts.doctor_id,
            "patient_id": patient_id,
            "national_id_hash": hashes[0] if hashes else None,
            "national_id_masked": mask_national_id(facts.national_id)
            if facts.national_id
            else None,
            "name_masked": mask_name(facts.name) if facts.name else None,
            "identifiers": list(facts.identifiers),
            "diagnosis_codes": list(facts.diagnosis_codes),
            "discharged_at": facts.discharged_at,
            "deceased": facts.deceased,
            "received_at": now,
            "match_status": "matched" if patient_id else "awaiting_match",
            "plan_id": None,
        }
        await self.db[DISCHARGES].insert_one(doc, session=tx.session)
        if patient_id is not None:
            await self._plan(tx, doc, patient_id)
        return doc

    async def _plan(self, tx: Tx, doc: Document, patient_id: str) -> None:
        if doc["deceased"]:
            await self.plans.end_for_patient(tx, patient_id, "deceased", "discharge: died")
            await self._set(tx, doc["_id"], {"outcome": "deceased"})
            return
        visit = doc.get("visit_id")
        start = PlanStart(
            patient_id=patient_id,
            org_id=doc["org_id"],
            source="discharge",
            source_id=f"{doc['org_id']}:{visit}" if visit else doc["_id"],
            started_at=doc["discharged_at"],
            department_id=doc.get("department_id"),
            doctor_id=doc.get("doctor_id"),
            diagnosis_codes=tuple(doc.get("diagnosis_codes", ())),
        )
        plan_id = await self.plans.start(tx, start)
        await self._set(tx, doc["_id"], {"plan_id": plan_id, "outcome": "planned"})
        doc["plan_id"] = plan_id
        if self.surveys is not None:
            await self.surveys.after_discharge(tx, {**doc, "patient_id": patient_id})

    async def _set(self, tx: Tx, discharge_id: str, fields: dict[str, Any]) -> None:
        await self.db[DISCHARGES].update_one(
            {"_id": discharge_id}, {"$set": fields}, session=tx.session
        )

    async def meet(self, tx: Tx, national_id_hash: str) -> None:
        """A discharge's lookup of its patient and that patient's registration, arriving at
        the same moment, would each miss the other's uncommitted write: the discharge would
        wait for a patient who is there. Both write one document keyed by the national ID's
        hash, so of two overlapping transactions one meets a write conflict and is run again
        (``shared.mongo``) after the other committed: it then sees the other's write."""
        await self.db[IDENTITY_MEETINGS].update_one(
            {"_id": national_id_hash},
            {"$set": {"at": datetime.now(UTC)}},
            upsert=True,
            session=tx.session,
        )

    async def patient_registered(self, tx: Tx, patient_id: str, national_id_hash: str) -> int:
        """A patient registered in appointments: plan the discharges that waited for them."""
        await self.meet(tx, national_id_hash)
        cursor = self.db[DISCHARGES].find(
            {"match_status": "awaiting_match", "national_id_hash": national_id_hash},
            session=tx.session,
        )
        matched = 0
        async for doc in cursor:
            await self._set(tx, doc["_id"], {"patient_id": patient_id, "match_status": "matched"})
            await self._plan(tx, doc, patient_id)
            matched += 1
        return matched

    # --- staff ---------------------------------------------------------------------------

    async def awaiting_match(
        self, principal: Principal, org_id: str | None, limit: int, reason: str | None
    ) -> list[Document]:
        org = org_filter(principal) or org_id
        query: dict[str, Any] = {"match_status": "awaiting_match"}
        if org is not None:
            query["org_id"] = org
        docs = await self.db[DISCHARGES].find(query, sort=[("received_at", 1)]).to_list(limit)
        await self.audit.record(
            principal,
            "followup.discharge.list_unmatched",
            patient_id=None,
            resource="discharges:awaiting_match",
            reason=reason,
            org_id=org,
            details={"count": len(docs)},
        )
        return [discharge_view(d) for d in docs]

    async def match(
        self, principal: Principal, discharge_id: str, patient_id: str, reason: str | None
    ) -> Document:
        """Staff name the real-name patient of a discharge that waited; it is then planned.

        A discharge whose national ID is known matches only the patient with that ID
        (409 ``identity_mismatch``), so a wrong pick cannot plan a stranger's follow-up."""

        async def work(tx: Tx) -> Document:
            doc = await self.db[DISCHARGES].find_one({"_id": discharge_id}, session=tx.session)
            if doc is None:
                raise discharge_not_found(discharge_id)
            ensure_org(principal, doc["org_id"])
            if doc["match_status"] != "awaiting_match":
                raise Conflict(
                    "discharge_already_matched",
                    "this discharge has its patient already",
                    detail_zh="该出院记录已匹配患者",
                )
            if not await self.patients.exists(patient_id, tx.session):
                raise NotFound(
                    "patient_not_found", "no such real-name patient", detail_zh="患者不存在"
                )
            known_hash = await self.patients.hash_of(patient_id, tx.session)
            wanted = doc.get("national_id_hash")
            if wanted is not None and known_hash is not None and wanted != known_hash:
                raise Conflict(
                    "identity_mismatch",
                    "the patient's national ID is not the discharge's",
                    detail_zh="患者身份证号与出院记录不一致",
                )
            await self._set(
                tx,
                discharge_id,
                {
                    "patient_id": patient_id,
                    "match_status": "matched_by_staff",
                    "matched_by": principal.subject,
                },
            )
            await self._plan(tx, doc, patient_id)
            await self.audit.record(
                principal,
                "followup.discharge.match",
                patient_id=patient_id,
                resource=f"discharge:{discharge_id}",
                reason=reason,
                org_id=doc["org_id"],
                session=tx.session,
            )
            fresh = await self.db[DISCHARGES].find_one({"_id": discharge_id}, session=tx.session)
            assert fresh is not None
            return discharge_view(fresh)

        return await self.outbox.transaction(work)


VIEW_KEYS = (
    "intake_id",
    "channel",
    "org_id",
    "visit_id",
    "department_id",
    "doctor_id",
    "patient_id",
    "national_id_masked",
    "name_masked",
    "identifiers",
    "diagnosis_codes",
    "discharged_at",
    "deceased",
    "received_at",
    "match_status",
    "outcome",
    "plan_id",
)


def discharge_view(doc: Document) -> dict[str, Any]:
    return {"discharge_id": doc["_id"], **{k: doc.get(k) for k in VIEW_KEYS}}
