"""Patient transports: requests, the porters' steps, cancellation, reads and the list.

Who (the states and steps: ``domain/transport.py``; the roster and roles: ``porters.py``):

* a transport belongs to the organization where it happens (``org_id``); its staff, and
  the staff of the organizations it comes from or goes to, read it (audited); the
  patient's own account reads where it stands (state and times only);
* nurses, doctors and coordinators of that organization ask for one, and the HIS for
  any; the same cancel it until the patient is picked up;
* the assigned porter records the steps; the organization's dispatcher (a coordinator)
  may record one in the porter's place.

For which patients a transport may be asked: ``transport_access.py``. Every refusal is
checked before anything is written. A request with an ``Idempotency-Key`` is made once: a
retry answers the transport made the first time (as it is now). A step retried by the one
who recorded it (the same step as the last one recorded) answers the transport as it is and
writes nothing: a handheld on a poor network may send a step twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.referrals.case_changes import actor
from services.referrals.dispatch import Dispatcher
from services.referrals.domain.transport import (
    State,
    Step,
    check_cancellable,
    check_porter,
    next_state,
    require_reason,
)
from services.referrals.domain.transport_request import TransportIn, pickup_time
from services.referrals.events import (
    TransportCancelled,
    TransportCompleted,
    TransportFailed,
    TransportRequested,
    TransportStepRecorded,
)
from services.referrals.settings import ReferralsSettings
from services.referrals.store import TRANSPORTS
from services.referrals.transport_access import TransportAccess, transport_org
from services.referrals.transport_changes import (
    facts,
    is_dispatcher,
    may_see,
    not_found,
    save_transport,
)
from services.referrals.transport_clock import PICKUP, RESPONSE, TransportClock
from shared.audit import AuditLog
from shared.events import make_event
from shared.idempotency import IdempotencyKeys, StoredResponse, request_fingerprint
from shared.ids import new_id
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.principal import Principal, Role
from shared.scoping import other_org, sees_every_org

STOPS = {Step.ACCEPT: (RESPONSE,), Step.PICKED_UP: (PICKUP,)}


class Transports:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        dispatcher: Dispatcher,
        clock: TransportClock,
        access: TransportAccess,
        idempotency: IdempotencyKeys,
        settings: ReferralsSettings,
        audit: AuditLog,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.dispatcher = dispatcher
        self.clock = clock
        self.access = access
        self.patients = access.patients
        self.idempotency = idempotency
        self.settings = settings
        self.audit = audit

    async def request(
        self, principal: Principal, body: TransportIn, idempotency_key: str | None = None
    ) -> Document:
        key = self.idempotency.validate(idempotency_key)
        scope = f"transport.request:{principal.subject}"
        if key is not None:
            fingerprint = request_fingerprint(body.model_dump(mode="json", by_alias=True))
            stored = await self.idempotency.begin(scope, key, fingerprint)
            if stored is not None:  # made the first time: the transport as it is now
                made = await self.db[TRANSPORTS].find_one({"_id": stored.body["transport_id"]})
                if made is None:
                    raise not_found()
                return made
        try:
            return await self._request(principal, body, scope, key)
        except BaseException:
            if key is not None:
                await self.idempotency.release(scope, key)
            raise

    async def _request(
        self, principal: Principal, body: TransportIn, scope: str, key: str | None
    ) -> Document:
        org_id = transport_org(principal, body.org_id)
        from_org = body.from_.org_id or org_id
        to_org = body.to.org_id or org_id
        await self.access.check_patient(body.patient_id, org_id, from_org, to_org, body.referral_id)
        doc = self.new_document(
            body,
            org_id=org_id,
            from_org=from_org,
            to_org=to_org,
            by=actor(principal),
            role=principal.primary_role,
        )

        async def work(tx: Tx) -> Document:
            after = await self.create(tx, doc, principal.primary_role)
            await self.audit.record(
                principal,
                "transport.request",
                patient_id=doc["patient_id"],
                resource=f"transport:{doc['_id']}",
                details={"org_id": org_id, "mode": doc["mode"], "priority": doc["priority"]},
                session=tx.session,
                org_id=org_id,
            )
            if key is not None:  # a retry after a crash finds it made, or not at all
                done = StoredResponse(201, {"transport_id": doc["_id"]})
                await self.idempotency.complete(scope, key, done, session=tx.session)
            return after

        result: Document = await self.outbox.transaction(work)
        return result

    def new_document(
        self,
        body: TransportIn,
        *,
        org_id: str,
        from_org: str,
        to_org: str,
        by: dict[str, Any],
        role: str,
        trigger_key: str | None = None,
    ) -> Document:
        now = datetime.now(UTC)
        pickup_at = pickup_time(
            body.pickup_at, body.appointment_starts_at, self.settings.transport_lead_minutes
        )
        response_due, pickup_due = self.clock.due(body.priority.value, now, pickup_at)
        doc: Document = {
            "_id": new_id(),
            "patient_id": body.patient_id,
            "org_id": org_id,
            "from": {**body.from_.model_dump(), "org_id": from_org},
            "to": {**body.to.model_dump(), "org_id": to_org},
            "mode": body.mode.value,
            "needs": [n.value for n in body.needs],
            "priority": body.priority.value,
            "pickup_at": pickup_at,
            "appointment_id": body.appointment_id,
            "appointment_starts_at": body.appointment_starts_at,
            "referral_id": body.referral_id,
            "note": body.note,
            "state": State.REQUESTED.value,
            "porter_id": None,
            "requested_by": {**by, "role": role},
            "requested_at": now,
            "response_due_at": response_due,
            "pickup_due_at": pickup_due,
            "escalated": {},
            "times": {State.REQUESTED.value: now},
            "reason": None,
            "history": [
                {
                    "at": now,
                    "by": by,
                    "action": "request",
                    "from_state": None,
                    "to_state": State.REQUESTED.value,
                    "reason": None,
                    "details": {},
                }
            ],
            "version": 1,
            "updated_at": now,
        }
        if trigger_key is not None:
            doc["trigger_key"] = trigger_key
        return doc

    async def create(self, tx: Tx, doc: Document, role: str) -> Document:
        """Write a new transport, tell the others, arm its deadlines, dispatch it."""
        await self.db[TRANSPORTS].insert_one(doc, session=tx.session)
        payload = TransportRequested(**facts(doc), requested_by_role=role)
        tx.emit(make_event(payload, source="referrals", subject=doc["patient_id"]))
        await self.clock.arm(tx, doc)
        return await self.dispatcher.auto_assign(tx, doc)

    async def get_for(
        self, principal: Principal, transport_id: str, *, reason: str | None = None
    ) -> tuple[Document, bool]:
        """The transport and whether the caller reads it as staff (reads are audited)."""
        doc = await self.db[TRANSPORTS].find_one({"_id": transport_id})
        if doc is None:
            raise not_found()
        if principal.is_staff or Role.SERVICE in principal.roles:
            if not may_see(principal, doc):
                raise other_org()
            await self.audit.record(
                principal,
                "transport.read",
                patient_id=doc["patient_id"],
                resource=f"transport:{transport_id}",
                reason=reason,
                org_id=doc["org_id"],
            )
            return doc, True
        owns = doc["patient_id"] in principal.patient_ids or await self.patients.manages(
            principal.subject, doc["patient_id"]
        )
        if Role.PATIENT not in principal.roles or not owns:
            raise not_found()
        return doc, False

    async def _load(self, principal: Principal, transport_id: str) -> Document:
        doc = await self.db[TRANSPORTS].find_one({"_id": transport_id})
        if doc is None:
            raise not_found()
        if not may_see(principal, doc):
            raise other_org()
        return doc

    async def cancel(self, principal: Principal, transport_id: str, reason: str | None) -> Document:
        doc = await self._load(principal, transport_id)
        if not (sees_every_org(principal) or principal.org_id == doc["org_id"]):
            raise other_org()
        why = require_reason(reason, "cancel")
        check_cancellable(doc["state"])

        async def work(tx: Tx) -> Document:
            after = await self.cancel_in(tx, doc, principal, why)
            await self.audit.record(
                principal,
                "transport.cancel",
                patient_id=doc["patient_id"],
                resource=f"transport:{transport_id}",
                reason=why,
                session=tx.session,
                org_id=doc["org_id"],
            )
            return after

        result: Document = await self.outbox.transaction(work)
        return result

    async def cancel_in(
        self, tx: Tx, doc: Document, principal: Principal | None, why: str
    ) -> Document:
        await self.clock.stop(tx, doc["_id"])
        return await save_transport(
            self.db,
            tx,
            doc,
            principal,
            "cancel",
            state=State.CANCELLED.value,
            fields={"reason": why},
            reason=why,
            event=TransportCancelled,
            event_fields={"reason": why},
        )

    async def step(
        self, principal: Principal, transport_id: str, step: Step, reason: str | None
    ) -> Document:
        """A porter's step (or the dispatcher's in their place): checked, then one write."""
        doc = await self._load(principal, transport_id)
        dispatcher = is_dispatcher(principal, doc)
        check_porter(doc.get("porter_id"), principal.subject, dispatcher=dispatcher)
        last = (doc.get("history") or [{}])[-1]
        if last.get("action") == step.value and last.get("by", {}).get("id") == principal.subject:
            return doc  # the same step sent again by the one who recorded it: done already
        target = next_state(doc["state"], step)
        why = require_reason(reason, step.value) if step is Step.CANNOT_COMPLETE else reason
        now = datetime.now(UTC)
        event: Any = TransportStepRecorded
        event_fields: dict[str, Any] = {"step": step.value, "at": now, "by_dispatcher": dispatcher}
        if target is State.COMPLETED:
            event, event_fields = TransportCompleted, {"completed_at": now}
        elif target is State.FAILED:
            event, event_fields = TransportFailed, {"reason": why}

        async def work(tx: Tx) -> Document:
            stops = STOPS.get(
                step, (RESPONSE, PICKUP) if target in (State.COMPLETED, State.FAILED) else ()
            )
            if stops:
                await self.clock.stop(tx, doc["_id"], *stops)
            after = await save_transport(
                self.db,
                tx,
                doc,
                principal,
                step.value,
                state=target.value,
                fields={"reason": why} if target is State.FAILED else {},
                reason=why,
                details={"by_dispatcher": dispatcher},
                event=event,
                event_fields=event_fields,
            )
            await self.audit.record(
                principal,
                "transport.step",
                patient_id=doc["patient_id"],
                resource=f"transport:{transport_id}",
                reason=why,
                details={"step": step.value, "to": target.value, "by_dispatcher": dispatcher},
                session=tx.session,
                org_id=doc["org_id"],
            )
            return after

        result: Document = await self.outbox.transaction(work)
        return result
