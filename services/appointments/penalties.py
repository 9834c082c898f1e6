"""Penalties: patients appeal a ban; staff decide appeals or override with a reason.

A ban is never stored: it is computed from the offences in the policy's sliding windows
(``records.py``) and lifts by itself. An approved appeal or an admin's override clears the
offences up to that moment (``PatientRecords.clear``), which lifts the ban at once. Appeals
and overrides are kept in the ``penalties`` collection; every staff decision is audited.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, IndexModel

from services.appointments.domain import rules
from services.appointments.domain.policy import BookingPolicy
from services.appointments.store import PENALTIES
from shared.ids import new_id
from shared.jobs import Job
from shared.mongo import CollectionIndexes, Document, ensure_indexes
from shared.outbox import Tx
from shared.principal import Principal
from shared.problems import Forbidden, NotFound

if TYPE_CHECKING:
    from services.appointments.context import Appointments

# timed jobs of this module: kind -> handler(ctx, job, tx); registered in handlers.py
JOBS: dict[str, Callable[[Appointments, Job, Tx], Awaitable[None]]] = {}

APPEAL = "appeal"
OVERRIDE = "override"
PENDING = "pending"
# one open appeal per patient, even when two requests race
PENALTY_INDEXES = CollectionIndexes(
    PENALTIES,
    [
        IndexModel(
            [("patient_id", ASCENDING)],
            unique=True,
            partialFilterExpression={"open": True},
            name="one_open_appeal",
        ),
    ],
)
APPEAL_SHOWS = ("patient_id", "org_id", "status", "reason", "at", "banned_until")
DECISION_SHOWS = ("decided_at", "decided_by", "note")


def appeal_view(doc: Document) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        **{k: doc.get(k) for k in APPEAL_SHOWS},
        **{k: doc.get(k) for k in DECISION_SHOWS},
    }


class Penalties:
    def __init__(self, ctx: Appointments) -> None:
        self.ctx = ctx
        self.collection = ctx.runtime.db[PENALTIES]
        self._indexed = False
        self._index_lock = asyncio.Lock()

    async def ensure_indexes(self) -> None:
        """The extra index of ``penalties``, created once per process (idempotent)."""
        if self._indexed:
            return
        async with self._index_lock:
            if not self._indexed:
                await ensure_indexes(self.ctx.runtime.db, [PENALTY_INDEXES])
                self._indexed = True

    async def _open_appeal(self, patient_id: str, session: Any = None) -> Document | None:
        return await self.collection.find_one(
            {"patient_id": patient_id, "kind": APPEAL, "open": True}, session=session
        )

    def _summary(
        self, record: Document, policy: BookingPolicy, org_id: str, now: datetime
    ) -> dict[str, Any]:
        records = self.ctx.records
        banned_until = records.banned_until(record, policy, now)
        counts = {}
        for field, rule in (
            ("no_shows", policy.no_show_penalty),
            ("late_cancels", policy.late_cancel_penalty),
        ):
            counts[field] = {
                "count": records.offences_in_window(record, field, rule.window_days, now),
                "window_days": rule.window_days,
                "threshold": rule.threshold,
                "ban_days": rule.ban_days,
            }
        return {
            "patient_id": record["_id"],
            "org_id": org_id,
            **counts,
            "banned": rules.is_banned(banned_until, now),
            "banned_until": banned_until,
            "cleared_at": record.get("cleared_at"),
        }

    # --- reading ----------------------------------------------------------------------------

    async def status(
        self,
        principal: Principal,
        patient_id: str,
        org_id: str,
        now: datetime | None = None,
        *,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Offences counted in the current windows, the ban if any, and the open appeal."""
        now = now or datetime.now(UTC)
        await self.ctx.patients.get_for(principal, patient_id)
        policy = await self.ctx.policies.for_org(org_id)
        record = await self.ctx.records.get(patient_id)
        appeal = await self._open_appeal(patient_id)
        await self.ctx.runtime.audit.record(
            principal,
            "patient.booking_status.read",
            patient_id=patient_id,
            resource=f"patient:{patient_id}",
            reason=reason,
        )
        return {
            **self._summary(record, policy, org_id, now),
            "appeal": appeal_view(appeal) if appeal else None,
        }

    async def get_appeal(self, appeal_id: str) -> Document:
        doc = await self.collection.find_one({"_id": appeal_id, "kind": APPEAL})
        if doc is None:
            raise NotFound("appeal_not_found", "no such appeal", detail_zh="申诉不存在")
        return doc

    # --- the patient appeals ------------------------------------------------------------------

    async def appeal(
        self,
        principal: Principal,
        patient_id: str,
        *,
        reason: str,
        org_id: str,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        patient = await self.ctx.patients.get(patient_id)
        if principal.subject not in patient.get("account_ids", []):
            raise Forbidden(
                "forbidden_patient",
                "only the patient's own account may appeal",
                detail_zh="仅本人账号可提交申诉",
            )
        policy = await self.ctx.policies.for_org(org_id)
        await self.ensure_indexes()

        async def work(tx: Tx) -> dict[str, Any]:
            # touching the record serializes this patient's appeals and bookings
            record = await self.ctx.records.lock(patient_id, tx.session)
            banned_until = self.ctx.records.banned_until(record, policy, now)
            pending = await self._open_appeal(patient_id, tx.session) is not None
            rules.check_appeal_allowed(banned_until, now, pending=pending)
            doc = {
                "_id": new_id(),
                "kind": APPEAL,
                "patient_id": patient_id,
                "account_id": principal.subject,
                "org_id": org_id,
                "reason": reason,
                "status": PENDING,
                "open": True,
                "at": now,
                "banned_until": banned_until,
                "offences": self._summary(record, policy, org_id, now),
            }
            await self.collection.insert_one(doc, session=tx.session)
            return appeal_view(doc)

        return await self.ctx.runtime.outbox.transaction(work)

    # --- staff decide -------------------------------------------------------------------------

    async def decide(
        self,
        principal: Principal,
        appeal: Document,
        *,
        approve: bool,
        note: str,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Approve (the offences are cleared, so the ban lifts) or reject (the ban stays)."""
        now = now or datetime.now(UTC)
        rules.check_appeal_undecided(appeal["status"])
        status = "approved" if approve else "rejected"
        patient_id = appeal["patient_id"]

        async def work(tx: Tx) -> dict[str, Any]:
            decided = await self.collection.find_one_and_update(
                {"_id": appeal["_id"], "status": PENDING},
                {
                    "$set": {
                        "status": status,
                        "open": False,
                        "decided_at": now,
                        "decided_by": {"id": principal.subject, "role": principal.primary_role},
                        "note": note,
                    }
                },
                return_document=True,
                session=tx.session,
            )
            if decided is None:  # decided by someone else since we looked
                rules.check_appeal_undecided("decided")  # raises
                raise AssertionError("unreachable")
            if approve:
                await self.ctx.records.clear(
                    patient_id,
                    by=principal.subject,
                    reason=f"appeal {appeal['_id']} approved: {note}",
                    session=tx.session,
                )
            await self.ctx.runtime.audit.record(
                principal,
                f"penalty.appeal.{status}",
                patient_id=patient_id,
                resource=f"appeal:{appeal['_id']}",
                reason=note,
                session=tx.session,
            )
            return appeal_view(decided)

        return await self.ctx.runtime.outbox.transaction(work)

    async def override(
        self,
        principal: Principal,
        patient_id: str,
        *,
        reason: str,
        org_id: str,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """An admin lifts a running ban with a reason; an open appeal is closed with it."""
        now = now or datetime.now(UTC)
        await self.ctx.patients.get(patient_id)
        policy = await self.ctx.policies.for_org(org_id)
        await self.ensure_indexes()
        by = {"id": principal.subject, "role": principal.primary_role}

        async def work(tx: Tx) -> dict[str, Any]:
            record = await self.ctx.records.lock(patient_id, tx.session)
            banned_until = self.ctx.records.banned_until(record, policy, now)
            rules.check_appeal_allowed(banned_until, now, pending=False)  # 409 not_banned
            await self.ctx.records.clear(
                patient_id, by=principal.subject, reason=f"override: {reason}", session=tx.session
            )
            await self.collection.update_many(
                {"patient_id": patient_id, "kind": APPEAL, "open": True},
                {
                    "$set": {
                        "status": "overridden",
                        "open": False,
                        "decided_at": now,
                        "decided_by": by,
                        "note": reason,
                    }
                },
                session=tx.session,
            )
            entry = {
                "_id": new_id(),
                "kind": OVERRIDE,
                "patient_id": patient_id,
                "org_id": org_id,
                "reason": reason,
                "at": now,
                "by": by,
                "banned_until": banned_until,
            }
            await self.collection.insert_one(entry, session=tx.session)
            await self.ctx.runtime.audit.record(
                principal,
                "penalty.ban.override",
                patient_id=patient_id,
                resource=f"patient:{patient_id}",
                reason=reason,
                details={"org_id": org_id, "banned_until": str(banned_until)},
                session=tx.session,
            )
            cleared = await self.ctx.records.lock(patient_id, tx.session)
            return {**self._summary(cleared, policy, org_id, now), "override_id": entry["_id"]}

        return await self.ctx.runtime.outbox.transaction(work)
