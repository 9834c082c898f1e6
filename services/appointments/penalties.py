"""Penalties: patients appeal a ban; staff decide appeals or override with a reason.

A ban is never stored: it is computed from the offences in the policy's sliding windows
(``records.py``) and lifts by itself. An approved appeal or an admin's override clears the
offences up to that moment (``PatientRecords.clear``), which lifts the ban at once. Appeals
and overrides are kept in the ``penalties`` collection; every staff decision is audited.

All of it is per organization: a ban is one organization's, an appeal or an override is
for the organization of the ban (given, or the only one the patient is banned at).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.appointments.domain import penalty_rules
from services.appointments.domain.policy import DEFAULT_POLICY, BookingPolicy
from services.appointments.patients import Patients
from services.appointments.policies import Policies
from services.appointments.records import PatientRecords
from services.appointments.store import PENALTIES
from shared.audit import AuditLog
from shared.ids import new_id
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.principal import Principal
from shared.problems import Forbidden, NotFound, Unprocessable
from shared.scoping import org_filter

APPEAL = "appeal"
OVERRIDE = "override"
PENDING = "pending"
APPEAL_SHOWS = ("patient_id", "org_id", "status", "reason", "at", "banned_until")
DECISION_SHOWS = ("decided_at", "decided_by", "note")


def _limited(summary: dict[str, Any]) -> bool:
    return bool(
        summary["banned"] or summary["no_shows"]["count"] or summary["late_cancels"]["count"]
    )


def _primary(organizations: list[dict[str, Any]], principal: Principal) -> dict[str, Any]:
    """The organization the top-level (pre-per-organization) fields describe."""
    banned = [o for o in organizations if o["banned"]]
    if banned:
        return max(banned, key=lambda o: o["banned_until"])
    for org in organizations:
        if org["org_id"] == principal.org_id:
            return org
    return organizations[0]


def appeal_view(doc: Document) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        **{k: doc.get(k) for k in APPEAL_SHOWS},
        **{k: doc.get(k) for k in DECISION_SHOWS},
    }


class Penalties:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        patients: Patients,
        policies: Policies,
        records: PatientRecords,
        audit: AuditLog,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.patients = patients
        self.policies = policies
        self.records = records
        self.audit = audit
        self.collection = db[PENALTIES]

    async def _open_appeal(
        self, patient_id: str, org_id: str | None, session: Any = None
    ) -> Document | None:
        query = {"patient_id": patient_id, "org_id": org_id, "kind": APPEAL, "open": True}
        return await self.collection.find_one(query, session=session)

    def _summary(
        self, record: Document, policy: BookingPolicy, org_id: str | None, now: datetime
    ) -> dict[str, Any]:
        records = self.records
        org = org_id or ""  # no organization: only offences stored without one count
        banned_until = records.banned_until(record, policy, now, org)
        counts = {}
        for field, rule in (
            ("no_shows", policy.no_show_penalty),
            ("late_cancels", policy.late_cancel_penalty),
        ):
            counts[field] = {
                "count": records.offences_in_window(record, field, rule.window_days, now, org),
                "window_days": rule.window_days,
                "threshold": rule.threshold,
                "ban_days": rule.ban_days,
            }
        return {
            "patient_id": record["_id"],
            "org_id": org_id,
            **counts,
            "banned": penalty_rules.is_banned(banned_until, now),
            "banned_until": banned_until,
            "cleared_at": record.get("cleared", {}).get(org) or record.get("cleared_at"),
        }

    # --- which organizations ------------------------------------------------------------------

    @staticmethod
    def scope_of(principal: Principal) -> str | None:
        """The one organization staff of an organization see and act for (None: any)."""
        if principal.is_staff:
            return org_filter(principal)
        return None

    def _orgs_on_record(self, principal: Principal, record: Document) -> set[str]:
        orgs = self.records.org_ids(record)
        if principal.org_id and (self.records.has_untagged(record) or not orgs):
            orgs.add(principal.org_id)  # offences stored without one count at the caller's
        scope = self.scope_of(principal)
        return orgs & {scope} if scope else orgs

    async def banned_org(self, principal: Principal, record: Document, now: datetime) -> str:
        """The organization of the patient's ban when none is named: the only one, else
        409 ``not_banned`` (none) or 422 ``org_id_required`` (several)."""
        banned = []
        for org_id in sorted(self._orgs_on_record(principal, record)):
            policy = await self.policies.for_org(org_id)
            if penalty_rules.is_banned(self.records.banned_until(record, policy, now, org_id), now):
                banned.append(org_id)
        if not banned:
            penalty_rules.check_appeal_allowed(None, now, pending=False)  # raises not_banned
        if len(banned) > 1:
            raise Unprocessable(
                "org_id_required",
                "the patient is banned at several organizations: name one in org_id",
                detail_zh="该就诊人在多家医院被暂停预约，请选择要申诉的医院",
                extra={"org_ids": banned},
            )
        return banned[0]

    # --- reading ----------------------------------------------------------------------------

    async def status(
        self,
        principal: Principal,
        patient_id: str,
        org_id: str | None,
        now: datetime | None = None,
        *,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """The patient's standing at every organization where offences count against them
        (or only at ``org_id``): offences in the windows, the ban, the open appeal.

        The top-level fields are one organization's: ``org_id`` if given, else where the
        ban runs longest, else the caller's, else the first with offences.
        """
        now = now or datetime.now(UTC)
        await self.patients.get_for(principal, patient_id)
        record = await self.records.get(patient_id)
        orgs = {org_id} if org_id else self._orgs_on_record(principal, record)
        organizations = []
        for org in sorted(orgs):
            policy = await self.policies.for_org(org)
            summary = self._summary(record, policy, org, now)
            if org == org_id or org == principal.org_id or _limited(summary):
                appeal = await self._open_appeal(patient_id, org)
                organizations.append({**summary, "appeal": appeal_view(appeal) if appeal else None})
        await self.audit.record(
            principal,
            "patient.booking_status.read",
            patient_id=patient_id,
            resource=f"patient:{patient_id}",
            reason=reason,
        )
        if not organizations:  # nothing anywhere: the defaults, at no organization
            primary = {**self._summary(record, DEFAULT_POLICY, None, now), "appeal": None}
        else:
            primary = _primary(organizations, principal)
        return {**primary, "organizations": organizations}

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
        org_id: str | None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Appeal the ban at ``org_id``, or (None) at the only organization banning them."""
        now = now or datetime.now(UTC)
        patient = await self.patients.get(patient_id)
        if principal.subject not in patient.get("account_ids", []):
            raise Forbidden(
                "forbidden_patient",
                "only the patient's own account may appeal",
                detail_zh="仅本人账号可提交申诉",
            )
        if org_id is None:
            org_id = await self.banned_org(principal, await self.records.get(patient_id), now)
        policy = await self.policies.for_org(org_id)

        async def work(tx: Tx) -> dict[str, Any]:
            # touching the record serializes this patient's appeals and bookings
            record = await self.records.lock(patient_id, tx.session)
            banned_until = self.records.banned_until(record, policy, now, org_id)
            pending = await self._open_appeal(patient_id, org_id, tx.session) is not None
            penalty_rules.check_appeal_allowed(banned_until, now, pending=pending)
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

        return await self.outbox.transaction(work)

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
        penalty_rules.check_appeal_undecided(appeal["status"])
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
                penalty_rules.check_appeal_undecided("decided")  # raises
                raise AssertionError("unreachable")
            if approve:
                await self.records.clear(
                    patient_id,
                    org_id=appeal["org_id"],
                    by=principal.subject,
                    reason=f"appeal {appeal['_id']} approved: {note}",
                    session=tx.session,
                    tx=tx,
                )
            await self.audit.record(
                principal,
                f"penalty.appeal.{status}",
                patient_id=patient_id,
                resource=f"appeal:{appeal['_id']}",
                reason=note,
                session=tx.session,
            )
            return appeal_view(decided)

        return await self.outbox.transaction(work)

    async def override(
        self,
        principal: Principal,
        patient_id: str,
        *,
        reason: str,
        org_id: str | None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """An admin lifts a running ban with a reason; an open appeal is closed with it.

        The ban at ``org_id``, or (None) at the only organization banning the patient
        that the admin manages.
        """
        now = now or datetime.now(UTC)
        await self.patients.get_for(principal, patient_id)  # another organization's: 403
        if org_id is None:
            org_id = await self.banned_org(principal, await self.records.get(patient_id), now)
        policy = await self.policies.for_org(org_id)
        by = {"id": principal.subject, "role": principal.primary_role}

        async def work(tx: Tx) -> dict[str, Any]:
            record = await self.records.lock(patient_id, tx.session)
            banned_until = self.records.banned_until(record, policy, now, org_id)
            penalty_rules.check_appeal_allowed(banned_until, now, pending=False)  # 409 not_banned
            await self.records.clear(
                patient_id,
                org_id=org_id,
                by=principal.subject,
                reason=f"override: {reason}",
                session=tx.session,
                tx=tx,
            )
            await self.collection.update_many(
                {"patient_id": patient_id, "org_id": org_id, "kind": APPEAL, "open": True},
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
            await self.audit.record(
                principal,
                "penalty.ban.override",
                patient_id=patient_id,
                resource=f"patient:{patient_id}",
                reason=reason,
                details={"org_id": org_id, "banned_until": str(banned_until)},
                session=tx.session,
            )
            cleared = await self.records.lock(patient_id, tx.session)
            return {**self._summary(cleared, policy, org_id, now), "override_id": entry["_id"]}

        return await self.outbox.transaction(work)
