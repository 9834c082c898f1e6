"""Bed offers: a bed manager assigns a bed to an admission notice; the bed is ``reserved``
and offered to the patient (``bed.offered``: when to come, what to bring) until
``offer_expires_at``. The patient's account (or, with a reason, a hotline agent or the
bed desk on the phone) confirms or declines. A declined offer, or one not confirmed in
time (a keyed timed job), frees the bed and offers it at once to the next candidate
(``domain/bed_rules.py``: urgency, then waiting time, among the waiting notices the bed
fits), with the same time to come (later if that has passed) and what to bring; with no
candidate the bed is free again.

Bed managers are nurses (the ward's head nurse / bed-management desk) and admins of the
organization. Every step is a conditional update inside one outbox transaction, so races
between confirm, decline and expiry, and job retries, never apply twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from services.appointments.admission_notices import (
    AdmissionNotices,
    NoticeStatus,
    facts_of,
    not_yours,
    offer_view,
)
from services.appointments.bed_offer_states import (
    MAX_CONFIRM_WINDOW,
    OFFER_EXPIRED_JOB,
    AssignIn,
    OfferStatus,
    facts,
    not_open,
    not_waiting,
    offer_job_key,
    offer_not_found,
    to_ms,
)
from services.appointments.beds import Beds, bed_label, bed_not_found
from services.appointments.booking_common import Idempotency, remember
from services.appointments.domain import bed_rules
from services.appointments.domain.bed_rules import BedStatus
from services.appointments.events import (
    BedOfferConfirmed,
    BedOfferDeclined,
    BedOffered,
    BedOfferExpired,
    BedOfferFacts,
)
from services.appointments.patients import Patients
from services.appointments.store import ADMISSION_NOTICES, BED_OFFERS
from shared.audit import AuditLog
from shared.events import make_event
from shared.ids import new_id
from shared.jobs import cancel_job, schedule_job
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.principal import Principal, Role
from shared.problems import Conflict, Unprocessable
from shared.scoping import ensure_org, may_see_org, other_org

log = structlog.get_logger(__name__)


class BedOffers:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        beds: Beds,
        notices: AdmissionNotices,
        patients: Patients,
        audit: AuditLog,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.beds = beds
        self.notices = notices
        self.patients = patients
        self.audit = audit

    # --- assign -------------------------------------------------------------------------

    async def assign(
        self,
        principal: Principal,
        notice_id: str,
        body: AssignIn,
        idempotency: Idempotency | None = None,
    ) -> dict[str, Any]:
        now = to_ms(datetime.now(UTC))
        notice = await self.notices.get(notice_id)
        ensure_org(principal, notice["org_id"])
        if notice["status"] != NoticeStatus.WAITING:
            raise not_waiting(notice)
        bed = await self.beds.get(body.bed_id)
        if bed["org_id"] != notice["org_id"]:
            raise bed_not_found()
        policy = await self.beds.policy(notice["org_id"])
        bed_rules.check_fit(facts_of(notice), await self.beds.facts(bed), policy)
        if body.come_at <= now:
            raise Unprocessable(
                "come_at_past", "the time to come has passed", detail_zh="入院时间已过"
            )
        expires = body.confirm_by or now + timedelta(minutes=policy.offer_minutes)
        if not now < expires <= now + MAX_CONFIRM_WINDOW:
            raise Unprocessable(
                "confirm_by_invalid",
                "confirm_by must be in the future, within 48 hours",
                detail_zh="确认截止时间无效",
            )
        expires = to_ms(min(expires, body.come_at))

        async def work(tx: Tx) -> dict[str, Any]:
            offer = await self._offer(
                tx, notice, bed, to_ms(body.come_at), body.what_to_bring, expires, principal.subject
            )
            await self.audit.record(
                principal,
                "bed.assign",
                patient_id=notice["patient_id"],
                resource=f"bed_offer:{offer['_id']}",
                details={"bed_id": bed["_id"], "notice_id": notice_id},
                session=tx.session,
            )
            view = offer_view(offer)
            await remember(idempotency, 201, view, tx.session)
            return view

        view = await self.outbox.transaction(work)
        log.info("bed.assigned", notice_id=notice_id, bed_id=bed["_id"], offer_id=view["id"])
        return view

    async def _offer(
        self,
        tx: Tx,
        notice: Document,
        bed: Document,
        come_at: datetime,
        what_to_bring: str,
        expires: datetime,
        by: str,
    ) -> Document:
        """Reserve the bed and offer it (in ``tx``); refusals leave nothing written."""
        offer_id, session = new_id(), tx.session
        held = await self.beds.change(
            tx,
            bed["_id"],
            [BedStatus.FREE],
            BedStatus.RESERVED,
            "offered",
            patient_id=notice["patient_id"],
            offer_id=offer_id,
            by=by,
        )
        if held is None:
            current = await self.beds.get(bed["_id"], session)
            raise Conflict(
                "bed_not_free",
                f"the bed is {current['status']}",
                detail_zh="该床位当前不可分配",
                extra={"bed_id": bed["_id"], "bed_status": current["status"]},
            )
        update = {
            "$set": {"status": NoticeStatus.OFFERED.value, "offer_id": offer_id},
            "$inc": {"version": 1},
        }
        taken = await self.db[ADMISSION_NOTICES].find_one_and_update(
            {"_id": notice["_id"], "status": NoticeStatus.WAITING.value}, update, session=session
        )
        if taken is None:
            raise not_waiting(await self.notices.get(notice["_id"], session))
        notice_facts, bed_facts = facts_of(notice), await self.beds.facts(bed, session)
        offer: Document = {
            "_id": offer_id,
            **{k: notice[k] for k in ("patient_id", "account_id", "org_id", "department_id")},
            "notice_id": notice["_id"],
            "department_name": notice["department_name"],
            "ward_id": bed["ward_id"],
            "ward_name": bed["ward_name"],
            "bed_id": bed["_id"],
            "bed_label": bed_label(bed),
            "borrowed": bed_rules.is_borrowed(notice_facts, bed_facts),
            "come_at": come_at,
            "what_to_bring": what_to_bring,
            "status": OfferStatus.OFFERED.value,
            "created_at": to_ms(datetime.now(UTC)),
            "expires_at": expires,
            "offered_by": by,
        }
        await self.db[BED_OFFERS].insert_one(offer, session=session)
        await schedule_job(
            self.db,
            session,
            kind=OFFER_EXPIRED_JOB,
            due_at=expires,
            payload={"offer_id": offer_id},
            key=offer_job_key(offer_id),
        )
        self._emit(tx, BedOffered(**facts(offer)), offer)
        return offer

    def _emit(self, tx: Tx, payload: BedOfferFacts, offer: Document) -> None:
        tx.emit(make_event(payload, source="appointments", subject=offer["patient_id"]))

    # --- the patient's answer -----------------------------------------------------------

    async def owned(self, principal: Principal, offer_id: str) -> Document:
        offer = await self.db[BED_OFFERS].find_one({"_id": offer_id})
        if offer is None:
            raise offer_not_found()
        if principal.is_staff or Role.SERVICE in principal.roles:
            if may_see_org(principal, offer["org_id"]):
                return offer
            raise other_org()
        patient = await self.patients.get(offer["patient_id"])
        if principal.subject in patient.get("account_ids", []):
            return offer
        raise not_yours()

    async def confirm(
        self,
        principal: Principal,
        offer_id: str,
        reason: str | None,
        idempotency: Idempotency | None = None,
    ) -> dict[str, Any]:
        now = datetime.now(UTC)
        offer = await self.owned(principal, offer_id)
        if offer["status"] != OfferStatus.OFFERED or offer["expires_at"] <= now:
            raise not_open(offer, now)

        async def work(tx: Tx) -> dict[str, Any]:
            taken = await self.db[BED_OFFERS].find_one_and_update(
                {"_id": offer_id, "status": OfferStatus.OFFERED.value, "expires_at": {"$gt": now}},
                {"$set": {"status": OfferStatus.CONFIRMED.value, "decided_at": now}},
                session=tx.session,
            )
            if taken is None:
                raise not_open(await self._reread(tx, offer_id), now)
            await self.db[ADMISSION_NOTICES].update_one(
                {"_id": offer["notice_id"], "offer_id": offer_id},
                {"$set": {"status": NoticeStatus.CONFIRMED.value}, "$inc": {"version": 1}},
                session=tx.session,
            )
            await cancel_job(self.db, tx.session, offer_job_key(offer_id))
            role = principal.primary_role
            self._emit(tx, BedOfferConfirmed(**facts(taken), confirmed_by_role=role), taken)
            await self._audit(tx, principal, "bed_offer.confirm", taken, reason)
            view = offer_view({**taken, "status": OfferStatus.CONFIRMED.value})
            await remember(idempotency, 200, view, tx.session)
            return view

        return await self.outbox.transaction(work)

    async def decline(
        self,
        principal: Principal,
        offer_id: str,
        reason: str | None,
        idempotency: Idempotency | None = None,
    ) -> dict[str, Any]:
        now = datetime.now(UTC)
        offer = await self.owned(principal, offer_id)
        open_ = [OfferStatus.OFFERED.value, OfferStatus.CONFIRMED.value]
        if offer["status"] not in open_:
            raise not_open(offer, now)

        async def work(tx: Tx) -> dict[str, Any]:
            taken = await self.db[BED_OFFERS].find_one_and_update(
                {"_id": offer_id, "status": {"$in": open_}},
                {"$set": {"status": OfferStatus.DECLINED.value, "decided_at": now}},
                session=tx.session,
            )
            if taken is None:
                raise not_open(await self._reread(tx, offer_id), now)
            await cancel_job(self.db, tx.session, offer_job_key(offer_id))
            role = principal.primary_role
            declined = BedOfferDeclined(**facts(taken), declined_by_role=role, reason=reason)
            self._emit(tx, declined, taken)
            await self._audit(tx, principal, "bed_offer.decline", taken, reason)
            await self._hand_on(tx, taken, "offer_declined", now)
            view = offer_view({**taken, "status": OfferStatus.DECLINED.value})
            await remember(idempotency, 200, view, tx.session)
            return view

        return await self.outbox.transaction(work)

    async def expire(self, tx: Tx, offer_id: str, now: datetime) -> bool:
        """The timed job: an offer not confirmed by ``expires_at`` lapses and is handed on."""
        offer = await self.db[BED_OFFERS].find_one({"_id": offer_id}, session=tx.session)
        if offer is None or offer["status"] != OfferStatus.OFFERED:
            return False
        if now < offer["expires_at"]:  # run early: come back when it lapses
            await schedule_job(
                self.db,
                tx.session,
                kind=OFFER_EXPIRED_JOB,
                due_at=offer["expires_at"],
                payload={"offer_id": offer_id},
                key=offer_job_key(offer_id),
            )
            return False
        taken = await self.db[BED_OFFERS].find_one_and_update(
            {"_id": offer_id, "status": OfferStatus.OFFERED.value},
            {"$set": {"status": OfferStatus.EXPIRED.value, "decided_at": now}},
            session=tx.session,
        )
        if taken is None:
            return False
        self._emit(tx, BedOfferExpired(**facts(taken)), taken)
        await self._hand_on(tx, taken, "offer_expired", now)
        log.info("bed_offer.expired", offer_id=offer_id, bed_id=taken["bed_id"])
        return True

    async def _hand_on(self, tx: Tx, offer: Document, cause: str, now: datetime) -> None:
        """The notice waits again; the bed goes to the next candidate, or is free."""
        await self.db[ADMISSION_NOTICES].update_one(
            {"_id": offer["notice_id"], "offer_id": offer["_id"]},
            {
                "$set": {"status": NoticeStatus.WAITING.value},
                "$unset": {"offer_id": ""},
                "$inc": {"version": 1, "passed_over": 1},
            },
            session=tx.session,
        )
        held = {"offer_id": offer["_id"]}
        freed = await self.beds.change(
            tx, offer["bed_id"], [BedStatus.RESERVED], BedStatus.FREE, cause, where=held
        )
        if freed is None:
            return  # the bed was no longer held for this offer
        await self.offer_next(tx, offer, now)

    async def offer_next(self, tx: Tx, previous: Document, now: datetime) -> Document | None:
        """Offer the (free) bed of ``previous`` to the best waiting candidate that has not
        passed it up (declined or let lapse) within the last day."""
        bed = await self.beds.get(previous["bed_id"], tx.session)
        bed_facts = await self.beds.facts(bed, tx.session)
        policy = await self.beds.policy(bed["org_id"])
        # not back to a patient who declined or let lapse this bed in the last day
        passed = await self.db[BED_OFFERS].distinct(
            "notice_id",
            {
                "bed_id": bed["_id"],
                "status": {"$in": [OfferStatus.DECLINED.value, OfferStatus.EXPIRED.value]},
                "created_at": {"$gte": now - timedelta(days=1)},
            },
            session=tx.session,
        )
        query = {
            "org_id": bed["org_id"],
            "status": NoticeStatus.WAITING.value,
            "_id": {"$nin": [previous["notice_id"], *passed]},
        }
        waiting = await self.db[ADMISSION_NOTICES].find(query, session=tx.session).to_list(5000)
        ranked = bed_rules.candidates_for_bed(bed_facts, [facts_of(n) for n in waiting], policy)
        if not ranked:
            return None
        notice = next(n for n in waiting if n["_id"] == ranked[0].id)
        window = max(previous["expires_at"] - previous["created_at"], timedelta(seconds=1))
        expires = to_ms(now + window)
        come_at = max(previous["come_at"], expires)
        offer = await self._offer(
            tx, notice, bed, come_at, previous["what_to_bring"], expires, "system"
        )
        log.info("bed_offer.handed_on", bed_id=bed["_id"], offer_id=offer["_id"])
        return offer

    async def _reread(self, tx: Tx, offer_id: str) -> Document:
        offer = await self.db[BED_OFFERS].find_one({"_id": offer_id}, session=tx.session)
        if offer is None:
            raise offer_not_found()
        return offer

    async def _audit(
        self, tx: Tx, principal: Principal, action: str, offer: Document, reason: str | None
    ) -> None:
        await self.audit.record(
            principal,
            action,
            patient_id=offer["patient_id"],
            resource=f"bed_offer:{offer['_id']}",
            reason=reason,
            session=tx.session,
            org_id=offer["org_id"],
        )
