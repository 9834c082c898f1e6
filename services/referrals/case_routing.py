"""Sending a case to a receiver, and moving it on: the one place a case changes hands.

Sending records the offer, sets the acceptance deadline (SLA) and schedules the two timed
jobs of that offer: the escalation at the deadline and the re-route after it (jobs fire
once across replicas: ``shared.jobs`` leases them). Both jobs carry the routing attempt, so
a job of an earlier offer finds the case moved on and does nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.referrals.case_changes import save_change
from services.referrals.domain.routing import Candidate
from services.referrals.domain.workflow import BusinessStatus, TaskStatus
from services.referrals.events import ReferralRejected, ReferralRouted
from services.referrals.routing import Routing, routing_document
from services.referrals.settings import ReferralsSettings
from shared.jobs import cancel_job, schedule_job
from shared.mongo import Database, Document
from shared.outbox import Tx
from shared.principal import Principal

ESCALATE = "referral.sla_escalate"
REROUTE = "referral.sla_reroute"


def escalate_key(case_id: str, attempt: int) -> str:
    return f"referral-escalate:{case_id}:{attempt}"


def reroute_key(case_id: str, attempt: int) -> str:
    return f"referral-reroute:{case_id}:{attempt}"


class CaseRouting:
    def __init__(self, db: Database, routing: Routing, settings: ReferralsSettings) -> None:
        self.db = db
        self.routing = routing
        self.settings = settings

    async def send(
        self,
        tx: Tx,
        doc: Document,
        principal: Principal | None,
        winner: Candidate,
        candidates: list[Candidate],
        explanation: str,
        *,
        action: str,
        routed_by: str,
        reason: str | None = None,
    ) -> Document:
        """Offer ``doc`` to ``winner``: status requested, a deadline, the SLA jobs."""
        now = datetime.now(UTC)
        attempt = int(doc.get("routing", {}).get("attempt", 0)) + 1
        due_at = await self.routing.deadline(winner.org_id, doc["urgency"], now)
        offer_id = await self.routing.record_offer(doc["_id"], winner.org_id, now, tx.session)
        after = await save_change(
            self.db,
            tx,
            doc,
            principal,
            action,
            status=TaskStatus.REQUESTED.value,
            business_status=BusinessStatus.AWAITING_TRIAGE.value,
            fields={
                "receiving_org_id": winner.org_id,
                "receiving_department_id": None,
                "routing": routing_document(
                    candidates, explanation, attempt=attempt, by=routed_by, now=now
                ),
                "offer_id": offer_id,
                "due_at": due_at,
                "escalated": False,
            },
            reason=reason,
            details={"to_org_id": winner.org_id, "attempt": attempt, "explanation": explanation},
            event=ReferralRouted,
            event_fields={"routed_by": routed_by, "reason": reason, "acceptance_due_at": due_at},
        )
        await self._cancel_jobs(tx, doc)
        await self._schedule(tx, doc["_id"], attempt, due_at)
        return after

    async def move_on(
        self,
        tx: Tx,
        doc: Document,
        principal: Principal | None,
        *,
        outcome: str,
        reason_code: str,
        reason: str | None,
    ) -> Document:
        """The current receiver declined (``rejected``) or let the deadline pass
        (``timeout``): offer the case to the next candidate that has not declined, or end it
        as rejected when none is left."""
        now = datetime.now(UTC)
        declined_org = doc["receiving_org_id"]
        await self.routing.answer_offer(doc.get("offer_id"), outcome, now, tx.session)
        declined = {*doc.get("declined_org_ids", []), declined_org}
        candidates, explanation = await self.routing.rank_for(
            doc, declined=declined, session=tx.session
        )
        eligible = [c for c in candidates if c.excluded is None]
        pushed = {"declined_org_ids": declined_org}
        rejection: dict[str, Any] = {
            "rejected_org_id": declined_org,
            "reason_code": reason_code,
            "reason": reason,
        }
        if not eligible:
            await self._cancel_jobs(tx, doc)
            return await save_change(
                self.db,
                tx,
                doc,
                principal,
                "reject" if outcome == "rejected" else "sla_timeout",
                status=TaskStatus.REJECTED.value,
                business_status=BusinessStatus.REJECTED.value,
                fields={"due_at": None, "offer_id": None},
                push=pushed,
                reason=reason or reason_code,
                details={"reason_code": reason_code, "explanation": explanation},
                event=ReferralRejected,
                event_fields={**rejection, "rerouted": False},
            )
        declined_doc = await save_change(
            self.db,
            tx,
            doc,
            principal,
            "reject" if outcome == "rejected" else "sla_timeout",
            push=pushed,
            reason=reason or reason_code,
            details={"reason_code": reason_code},
            event=ReferralRejected,
            event_fields={**rejection, "rerouted": True},
        )
        return await self.send(
            tx,
            declined_doc,
            None,
            eligible[0],
            candidates,
            explanation,
            action="reroute",
            routed_by="router",
        )

    async def _cancel_jobs(self, tx: Tx, doc: Document) -> None:
        attempt = doc.get("routing", {}).get("attempt")
        if attempt:
            await cancel_job(self.db, tx.session, escalate_key(doc["_id"], attempt))
            await cancel_job(self.db, tx.session, reroute_key(doc["_id"], attempt))

    async def restart_clock(self, tx: Tx, doc: Document) -> Document:
        """A case back at its receiver (after a hold) gets a new deadline and new jobs."""
        now = datetime.now(UTC)
        due_at = await self.routing.deadline(doc["receiving_org_id"], doc["urgency"], now)
        after = await save_change(
            self.db, tx, doc, None, "sla_restarted", fields={"due_at": due_at, "escalated": False}
        )
        await self._schedule(tx, doc["_id"], int(doc["routing"]["attempt"]), due_at)
        return after

    async def _schedule(self, tx: Tx, case_id: str, attempt: int, due_at: datetime) -> None:
        job = {"case_id": case_id, "attempt": attempt}
        await schedule_job(
            self.db,
            tx.session,
            kind=ESCALATE,
            due_at=due_at,
            payload=job,
            key=escalate_key(case_id, attempt),
        )
        reroute_at = due_at + timedelta(minutes=self.settings.reroute_after_escalation_minutes)
        await schedule_job(
            self.db,
            tx.session,
            kind=REROUTE,
            due_at=reroute_at,
            payload=job,
            key=reroute_key(case_id, attempt),
        )

    async def stop_clock(self, tx: Tx, doc: Document) -> None:
        """The receiver answered (or the case left ``requested``): no escalation, no re-route."""
        await self._cancel_jobs(tx, doc)
