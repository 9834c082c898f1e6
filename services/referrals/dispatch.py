"""Dispatching transports to porters and ambulance crews.

A new transport goes at once to the best porter on duty (``domain/transport.py``: zone,
skills, load); one nobody can take waits as ``requested`` and goes out when a fitting
porter comes on duty (``PUT /v1/referrals/porters/me/duty``). The dispatcher (a
coordinator of the organization where it happens, or the HIS) may assign by hand, with a
reason, to any active porter of that organization (audited: ``transport.override``).
"""

from __future__ import annotations

from typing import Any

from services.referrals.domain.transport import (
    WORKING,
    State,
    best_porter,
    check_movable,
    require_reason,
    required_skills,
)
from services.referrals.events import TransportAssigned
from services.referrals.porters import Roster, roster_view
from services.referrals.settings import ReferralsSettings
from services.referrals.store import TRANSPORTS
from services.referrals.transport_changes import (
    is_dispatcher,
    may_see,
    not_found,
    save_transport,
    staff_view,
)
from shared.audit import AuditLog
from shared.domain_errors import Forbidden, Invalid
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.principal import Principal
from shared.scoping import other_org

PRIORITY_ORDER = {"emergency": 0, "urgent": 1, "routine": 2}
WAITING_BATCH = 50  # queued transports tried when a porter comes on duty


class Dispatcher:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        roster: Roster,
        settings: ReferralsSettings,
        audit: AuditLog,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.roster = roster
        self.settings = settings
        self.audit = audit

    async def auto_assign(self, tx: Tx, doc: Document) -> Document:
        """Give a waiting transport to the best porter on duty, if any fits."""
        if doc["state"] != State.REQUESTED:
            return doc
        porters = await self.roster.on_duty(doc["org_id"], tx.session)
        skills = required_skills(doc["mode"], doc["needs"])
        porter = best_porter(
            porters, doc["from"].get("zone"), skills, self.settings.porter_max_load
        )
        if porter is None:
            return doc
        return await save_transport(
            self.db,
            tx,
            doc,
            None,
            "dispatch",
            state=State.ASSIGNED.value,
            fields={"porter_id": porter.porter_id},
            details={"porter_id": porter.porter_id, "load": porter.load},
            event=TransportAssigned,
            event_fields={"porter_id": porter.porter_id, "assigned_by": "dispatch"},
        )

    async def assign_waiting(self, tx: Tx, org_id: str) -> int:
        """Dispatch the organization's waiting transports (most urgent, oldest first)."""
        waiting = (
            await self.db[TRANSPORTS]
            .find({"org_id": org_id, "state": State.REQUESTED.value}, session=tx.session)
            .sort("requested_at", 1)
            .limit(WAITING_BATCH)
            .to_list()
        )
        waiting.sort(key=lambda d: (PRIORITY_ORDER.get(d["priority"], 9), d["requested_at"]))
        assigned = 0
        for doc in waiting:
            after = await self.auto_assign(tx, doc)
            assigned += after is not doc
        return assigned

    async def duty(
        self, principal: Principal, *, on_duty: bool, zone: str | None
    ) -> dict[str, Any]:
        """A porter goes on or off duty; on duty, waiting transports are dispatched."""
        porter = await self.roster.me(principal)

        async def work(tx: Tx) -> dict[str, Any]:
            after = await self.roster.set_duty(tx.session, porter, on_duty=on_duty, zone=zone)
            assigned = await self.assign_waiting(tx, after["org_id"]) if on_duty else 0
            await self.audit.record(
                principal,
                "porter.duty",
                patient_id=None,
                resource=f"porter:{porter['_id']}",
                details={"on_duty": on_duty, "zone": zone},
                session=tx.session,
            )
            return {**roster_view(after), "dispatched": assigned}

        result: dict[str, Any] = await self.outbox.transaction(work)
        return result

    async def next_jobs(self, principal: Principal) -> dict[str, Any]:
        """The porter's live jobs, the one due first at the top."""
        porter = await self.roster.me(principal)
        jobs = (
            await self.db[TRANSPORTS]
            .find({"porter_id": porter["_id"], "state": {"$in": sorted(WORKING)}})
            .sort("pickup_due_at", 1)
            .to_list()
        )
        views = [staff_view(j) for j in jobs]
        return {"next": views[0] if views else None, "jobs": views, "on_duty": porter["on_duty"]}

    async def override(
        self, principal: Principal, transport_id: str, porter_id: str, reason: str | None
    ) -> Document:
        """The dispatcher assigns by hand (audited, with the reason)."""
        doc = await self.db[TRANSPORTS].find_one({"_id": transport_id})
        if doc is None:
            raise not_found()
        if not may_see(principal, doc):
            raise other_org()
        if not is_dispatcher(principal, doc):
            raise Forbidden(
                "not_dispatcher",
                "transports are assigned by hand by the dispatcher of the organization "
                "where they happen",
                detail_zh="仅该机构的调度员可手动派单",
            )
        why = require_reason(reason, "assign")
        check_movable(doc["state"])
        porter = await self.roster.get(porter_id, None)
        if porter is None or porter["org_id"] != doc["org_id"]:
            raise Invalid(
                "unknown_porter",
                f"no active porter '{porter_id}' on the roster of {doc['org_id']}",
                detail_zh="该机构名册中无此陪检员",
                extra={"field": "porter_id"},
            )

        async def work(tx: Tx) -> Document:
            after = await save_transport(
                self.db,
                tx,
                doc,
                principal,
                "override",
                state=State.ASSIGNED.value,
                fields={"porter_id": porter_id},
                reason=why,
                details={"porter_id": porter_id, "previous_porter_id": doc.get("porter_id")},
                event=TransportAssigned,
                event_fields={"porter_id": porter_id, "assigned_by": "override", "reason": why},
            )
            await self.audit.record(
                principal,
                "transport.override",
                patient_id=doc["patient_id"],
                resource=f"transport:{doc['_id']}",
                reason=why,
                details={"porter_id": porter_id, "previous_porter_id": doc.get("porter_id")},
                session=tx.session,
                org_id=doc["org_id"],
            )
            return after

        result: Document = await self.outbox.transaction(work)
        return result
