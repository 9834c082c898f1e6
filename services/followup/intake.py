"""Intake from the HIS: three ways in, one discharge record (``discharges.py``).

* HL7 v2 over MLLP (``mllp.py``) and over HTTP (``routes/intake.py``) go through
  :meth:`Intake.hl7`, which answers the ACK to send back;
* JSON events on ``careloop.his`` (``his.discharge``, ``his.admitted``) through the consumer.

Every message is kept in ``intake_messages`` with its raw text encrypted (it names the
patient), what came of it and its ACK, under the sender and control id (MSH-10): a
duplicate is acknowledged again with the first answer and planned nothing. A malformed
message gets AR with the reason and is kept for review (reading its text is audited).
A message is acknowledged AA only after its effects are committed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import ValidationError

from services.followup.discharges import DischargeFacts, Discharges
from services.followup.domain.hl7_ack import AckCode, ack
from services.followup.domain.hl7_discharge import Admission, Discharge, parse_discharge
from services.followup.domain.hl7_reader import Malformed
from services.followup.events import AdtReceived
from services.followup.his_events import HisAdmitted, HisDischarge
from services.followup.plans import Plans
from services.followup.settings import FollowupSettings
from services.followup.store import INTAKE
from shared.audit import AuditLog
from shared.crypto import FieldCipher
from shared.domain_errors import NotFound
from shared.events import make_event
from shared.ids import new_id
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.principal import Principal
from shared.privacy import normalize_national_id
from shared.scoping import ensure_org, org_filter

log = structlog.get_logger(__name__)
RAW_CONTEXT = "followup.intake.raw"


class Intake:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        cipher: FieldCipher,
        discharges: Discharges,
        plans: Plans,
        audit: AuditLog,
        settings: FollowupSettings,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.cipher = cipher
        self.discharges = discharges
        self.plans = plans
        self.audit = audit
        self.settings = settings

    def _org(self, facility: str | None) -> str | None:
        return self.settings.facility_orgs.get(facility, facility) if facility else None

    async def hl7(self, raw: str, channel: str) -> tuple[str, str]:
        """Take one HL7 v2 message; returns (the ACK to send back, what came of it)."""
        parsed = parse_discharge(raw, self.settings.hospital_timezone)
        header = parsed.header
        control_id = header.control_id if header else None
        org_id = self._org(header.sending_facility) if header else None
        if isinstance(parsed, Malformed):
            intake_id = f"hl7-malformed:{new_id()}"
        else:
            assert header is not None  # a message that is not malformed has its MSH
            sender = f"{header.sending_application or ''}|{header.sending_facility or ''}"
            intake_id = f"hl7:{sender}:{control_id}"

        async def work(tx: Tx) -> tuple[str, str]:
            seen = await self.db[INTAKE].find_one({"_id": intake_id}, session=tx.session)
            if seen is not None:  # the same control id again: the first answer again
                await self.db[INTAKE].update_one(
                    {"_id": intake_id},
                    {"$inc": {"repeats": 1}, "$set": {"last_repeat_at": datetime.now(UTC)}},
                    session=tx.session,
                )
                return str(seen["ack"]), "duplicate"
            outcome, code, reason = await self._effects(tx, parsed, intake_id, channel, org_id)
            answer = ack(parsed, code, reason, timezone=self.settings.hospital_timezone)
            await self.db[INTAKE].insert_one(
                {
                    "_id": intake_id,
                    "format": "hl7v2",
                    "channel": channel,
                    "org_id": org_id,
                    "control_id": control_id,
                    "message_type": _message_type(parsed),
                    "raw_enc": self.cipher.encrypt(raw, context=RAW_CONTEXT, record_id=intake_id),
                    "outcome": outcome,
                    "reason": reason,
                    "ack_code": code,
                    "ack": answer,
                    "received_at": datetime.now(UTC),
                    "repeats": 0,
                },
                session=tx.session,
            )
            return answer, outcome

        answer, outcome = await self.outbox.transaction(work)
        log.info("followup.intake.hl7", channel=channel, outcome=outcome, control_id=control_id)
        return answer, outcome

    async def _effects(
        self, tx: Tx, parsed: Any, intake_id: str, channel: str, org_id: str | None
    ) -> tuple[str, AckCode, str | None]:
        """(outcome, ACK code, reason) of a message not seen before."""
        if isinstance(parsed, Malformed):
            return "malformed", "AR", parsed.reason
        if org_id is None and isinstance(parsed, Discharge | Admission):
            return "malformed", "AR", "no sending facility (MSH-4): whose patient is it?"
        if isinstance(parsed, Discharge):
            assert org_id is not None
            facts = _facts_from_hl7(parsed, org_id)
            doc = await self.discharges.record(tx, intake_id, channel, facts)
            tell_adt(tx, intake_id, "A03", org_id, parsed, doc.get("patient_id"))
            return ("planned" if doc.get("plan_id") else doc["match_status"]), "AA", None
        if isinstance(parsed, Admission):
            assert org_id is not None
            patient_id = await self._patient_of(tx, parsed.national_id)
            ended = await self._admitted(tx, None, patient_id)
            tell_adt(tx, intake_id, "A01", org_id, parsed, patient_id)
            return ("plans_ended" if ended else "not_planned"), "AA", None
        return "not_planned", "AA", None

    async def _patient_of(self, tx: Tx, national_id: str | None) -> str | None:
        if not national_id:
            return None
        hashes = self.discharges.patients.national_id_hashes(national_id)
        return await self.discharges.patients.find_by_hashes(hashes, tx.session)

    async def _admitted(self, tx: Tx, national_id: str | None, patient_id: str | None) -> int:
        """A readmission ends the patient's active plans."""
        if patient_id is None:
            patient_id = await self._patient_of(tx, national_id)
        if patient_id is None:
            return 0
        return len(await self.plans.end_for_patient(tx, patient_id, "readmitted"))

    # --- JSON on careloop.his ------------------------------------------------------------

    async def json_discharge(self, tx: Tx, event_id: str, data: dict[str, Any]) -> None:
        intake_id = f"json:{event_id}"
        try:
            his = HisDischarge.model_validate(data)
        except ValidationError as exc:
            await self._keep_malformed(tx, intake_id, "his.discharge", data, exc)
            return
        facts = DischargeFacts(
            org_id=his.org_id,
            discharged_at=his.discharged_at,
            visit_id=his.visit_id,
            department_id=alliance_id(his.org_id, his.department_id),
            doctor_id=alliance_id(his.org_id, his.doctor_id),
            patient_id=his.patient_id,
            national_id=his.national_id,
            name=his.name,
            identifiers=[{"id": his.mrn, "type_code": "MR"}] if his.mrn else [],
            diagnosis_codes=tuple(his.diagnosis_codes),
            deceased=his.deceased,
        )
        doc = await self.discharges.record(tx, intake_id, "kafka", facts)
        await self._keep_json(tx, intake_id, "his.discharge", his.org_id, doc)

    async def json_admitted(self, tx: Tx, event_id: str, data: dict[str, Any]) -> None:
        intake_id = f"json:{event_id}"
        try:
            his = HisAdmitted.model_validate(data)
        except ValidationError as exc:
            await self._keep_malformed(tx, intake_id, "his.admitted", data, exc)
            return
        ended = await self._admitted(tx, his.national_id, his.patient_id)
        outcome = {"outcome": "plans_ended" if ended else "not_planned"}
        await self._keep_json(tx, intake_id, "his.admitted", his.org_id, outcome)

    async def _keep_malformed(
        self, tx: Tx, intake_id: str, kind: str, data: dict[str, Any], exc: ValidationError
    ) -> None:
        """An event that breaks the contract: kept (encrypted) for review, with which
        fields were wrong (never their values)."""
        fields = sorted({".".join(str(p) for p in e["loc"]) or "(event)" for e in exc.errors()})
        reason = "invalid fields: " + ", ".join(fields)
        raw = json.dumps(data, ensure_ascii=False, default=str)
        org_id = data.get("org_id") if isinstance(data.get("org_id"), str) else None
        await self.db[INTAKE].insert_one(
            {
                "_id": intake_id,
                "format": "json",
                "channel": "kafka",
                "org_id": org_id,
                "message_type": kind,
                "raw_enc": self.cipher.encrypt(raw, context=RAW_CONTEXT, record_id=intake_id),
                "outcome": "malformed",
                "reason": reason,
                "received_at": datetime.now(UTC),
                "repeats": 0,
            },
            session=tx.session,
        )
        log.warning("followup.intake.json_malformed", kind=kind, fields=fields)

    async def _keep_json(
        self, tx: Tx, intake_id: str, kind: str, org_id: str | None, result: Document
    ) -> None:
        await self.db[INTAKE].insert_one(
            {
                "_id": intake_id,
                "format": "json",
                "channel": "kafka",
                "org_id": org_id,
                "message_type": kind,
                "outcome": result.get("outcome") or result.get("match_status"),
                "received_at": datetime.now(UTC),
                "repeats": 0,
            },
            session=tx.session,
        )

    # --- review --------------------------------------------------------------------------

    async def list_for(
        self, principal: Principal, outcome: str | None, org_id: str | None, limit: int
    ) -> list[Document]:
        query: dict[str, Any] = {}
        if outcome:
            query["outcome"] = outcome
        org = org_filter(principal) or org_id
        if org is not None:
            query["org_id"] = org
        docs = await self.db[INTAKE].find(query, sort=[("received_at", -1)]).to_list(limit)
        return [_view(d) for d in docs]

    async def read_for(self, principal: Principal, intake_id: str, reason: str | None) -> Document:
        """One message with its raw text (it names the patient: audited)."""
        doc = await self.db[INTAKE].find_one({"_id": intake_id})
        if doc is None:
            raise NotFound("message_not_found", "no such intake message", detail_zh="消息不存在")
        ensure_org(principal, doc.get("org_id"))
        await self.audit.record(
            principal,
            "followup.intake.read_raw",
            patient_id=None,
            resource=f"intake:{intake_id}",
            reason=reason,
            org_id=doc.get("org_id"),
        )
        raw = None
        if doc.get("raw_enc"):
            raw = self.cipher.decrypt(doc["raw_enc"], context=RAW_CONTEXT, record_id=intake_id)
        return {**_view(doc), "raw": raw}


def tell_adt(
    tx: Tx,
    intake_id: str,
    trigger: str,
    org_id: str,
    message: Discharge | Admission,
    patient_id: str | None,
) -> None:
    """``followup.adt.received`` for an accepted HL7 admission or discharge (beds follow it)."""
    where = message.location
    at = message.discharged_at if isinstance(message, Discharge) else message.admitted_at
    payload = AdtReceived(
        intake_id=intake_id,
        trigger=trigger,
        org_id=org_id,
        visit_id=message.visit_number if isinstance(message, Discharge) else None,
        patient_id=patient_id,
        department_id=alliance_id(org_id, message.department),
        ward_id=alliance_id(org_id, where.point_of_care if where else None),
        room=where.room if where else None,
        bed=where.bed if where else None,
        at=at,
        deceased=message.deceased if isinstance(message, Discharge) else False,
    )
    subject = patient_id or f"{org_id}:{intake_id}"
    tx.emit(make_event(payload, source="followup", subject=subject))


def alliance_id(org_id: str, code: str | None) -> str | None:
    """The HIS's department or doctor code as the alliance names it: ``<org>.<code>``, as
    appointments' departments and resources are (``h1.CARD``, ``h1.D1``)."""
    if not code:
        return None
    return code if code.startswith(f"{org_id}.") else f"{org_id}.{code}"


def _message_type(parsed: Any) -> str | None:
    header = parsed.header
    if header is None or header.message_code is None:
        return None
    return f"{header.message_code}^{header.trigger_event or ''}"


def _facts_from_hl7(message: Discharge, org_id: str) -> DischargeFacts:
    name = None
    if message.name is not None:
        name = "".join(p for p in (message.name.family, message.name.given) if p) or None
    others = [
        {"id": i.id, "type_code": i.type_code, "authority": i.authority}
        for i in message.identifiers
        if not message.national_id or normalize_national_id(i.id) != message.national_id
    ]
    discharged_at = message.discharged_at or datetime.now(UTC)
    return DischargeFacts(
        org_id=org_id,
        discharged_at=discharged_at,
        visit_id=message.visit_number,
        department_id=alliance_id(org_id, message.department),
        doctor_id=alliance_id(org_id, message.attending.id if message.attending else None),
        national_id=message.national_id,
        name=name,
        identifiers=others,
        diagnosis_codes=tuple(d.code for d in message.diagnoses),
        deceased=message.deceased,
    )


VIEW_KEYS = (
    "format",
    "channel",
    "org_id",
    "control_id",
    "message_type",
    "outcome",
    "reason",
    "ack_code",
    "received_at",
    "repeats",
)


def _view(doc: Document) -> dict[str, Any]:
    return {"message_id": doc["_id"], **{k: doc.get(k) for k in VIEW_KEYS}}
