"""The acceptance deadline's two timed jobs (scheduled by ``case_routing.send``).

At the deadline a case still waiting at the same receiver is escalated to that
organization's coordinator (``referral.escalated``, once); a while later, if it is still
waiting, it moves on to the next candidate as if declined (``timeout``). The jobs run in
``shared.jobs``: leased, so with several replicas each fires once, and its change commits
with the job's completion. A job of an earlier offer finds the attempt moved on and does
nothing.
"""

from __future__ import annotations

from services.referrals.case_changes import save_change
from services.referrals.case_routing import CaseRouting
from services.referrals.domain.workflow import TaskStatus
from services.referrals.events import ReferralEscalated
from services.referrals.store import CASES
from shared.jobs import Job
from shared.mongo import Database, Document
from shared.outbox import Tx


class SlaClock:
    def __init__(self, db: Database, case_routing: CaseRouting) -> None:
        self.db = db
        self.case_routing = case_routing

    async def _waiting(self, job: Job, tx: Tx) -> Document | None:
        doc = await self.db[CASES].find_one({"_id": job.payload["case_id"]}, session=tx.session)
        if doc is None or doc["status"] != TaskStatus.REQUESTED.value:
            return None
        if doc.get("routing", {}).get("attempt") != job.payload["attempt"]:
            return None
        return doc

    async def escalate(self, job: Job, tx: Tx) -> None:
        doc = await self._waiting(job, tx)
        if doc is None or doc.get("escalated"):
            return
        await save_change(
            self.db,
            tx,
            doc,
            None,
            "sla_escalated",
            fields={"escalated": True},
            reason="acceptance deadline passed",
            details={"org_id": doc["receiving_org_id"]},
            event=ReferralEscalated,
            event_fields={"escalated_org_id": doc["receiving_org_id"], "deadline": doc["due_at"]},
        )

    async def reroute(self, job: Job, tx: Tx) -> None:
        doc = await self._waiting(job, tx)
        if doc is None:
            return
        await self.case_routing.move_on(
            tx, doc, None, outcome="timeout", reason_code="sla_timeout", reason=None
        )
