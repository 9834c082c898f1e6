"""A transport's two deadlines as timed jobs, keyed by transport (``shared.jobs``): at the
response deadline a transport no porter has accepted, and at the pickup deadline one
whose patient nobody has yet, is escalated to the organization's dispatcher
(``transport.escalated``, and a notice on the coordinators' desk: ``GET
/v1/referrals/notices``), once per deadline: the jobs are leased, so with several replicas
each fires once, and the escalation commits with the job's completion. Moving a
transport (a rescheduled exam) moves its jobs and arms them again.
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.referrals.domain.transport import State, deadlines
from services.referrals.events import TransportEscalated
from services.referrals.settings import ReferralsSettings
from services.referrals.store import NOTICES, TRANSPORTS
from services.referrals.transport_changes import save_transport
from shared.ids import new_id
from shared.jobs import Job, cancel_job, schedule_job
from shared.mongo import Database, Document
from shared.outbox import Tx

RESPONSE = "transport.sla_response"
PICKUP = "transport.sla_pickup"
# the states in which each deadline is still open
OPEN = {
    RESPONSE: frozenset({State.REQUESTED, State.ASSIGNED}),
    PICKUP: frozenset({State.REQUESTED, State.ASSIGNED, State.EN_ROUTE}),
}
NAMES = {RESPONSE: "response", PICKUP: "pickup"}


def job_key(kind: str, transport_id: str) -> str:
    return f"{kind}:{transport_id}"


class TransportClock:
    def __init__(self, db: Database, settings: ReferralsSettings) -> None:
        self.db = db
        self.settings = settings

    def due(
        self, priority: str, requested_at: datetime, pickup_at: datetime | None
    ) -> tuple[datetime, datetime]:
        minutes = getattr(self.settings.transport_minutes, priority)
        found = deadlines(requested_at, pickup_at, minutes.response, minutes.pickup)
        return found.response_due, found.pickup_due

    async def arm(self, tx: Tx, doc: Document) -> None:
        """Schedule (or move) both deadline jobs of ``doc``."""
        for kind, due_at in ((RESPONSE, doc["response_due_at"]), (PICKUP, doc["pickup_due_at"])):
            await schedule_job(
                self.db,
                tx.session,
                kind=kind,
                due_at=due_at,
                payload={"transport_id": doc["_id"]},
                key=job_key(kind, doc["_id"]),
            )

    async def stop(self, tx: Tx, transport_id: str, *kinds: str) -> None:
        for kind in kinds or (RESPONSE, PICKUP):
            await cancel_job(self.db, tx.session, job_key(kind, transport_id))

    async def escalate(self, job: Job, tx: Tx) -> None:
        """A deadline passed: tell the dispatcher, unless it was met or told already."""
        doc = await self.db[TRANSPORTS].find_one(
            {"_id": job.payload["transport_id"]}, session=tx.session
        )
        name = NAMES[job.kind]
        if doc is None or State(doc["state"]) not in OPEN[job.kind]:
            return
        if (doc.get("escalated") or {}).get(name):
            return
        deadline = doc[f"{name}_due_at"]
        await save_transport(
            self.db,
            tx,
            doc,
            None,
            f"sla_{name}_missed",
            fields={f"escalated.{name}": True},
            reason=f"{name} deadline passed",
            details={"deadline": deadline},
            event=TransportEscalated,
            event_fields={"deadline_kind": name, "deadline": deadline},
        )
        # the dispatcher's desk (the organization's coordinators) reads it in its notices
        await self.db[NOTICES].insert_one(
            {
                "_id": new_id(),
                "kind": f"transport_{name}_missed",
                "org_id": doc["org_id"],
                "doctor_id": None,
                "transport_id": doc["_id"],
                "patient_id": doc["patient_id"],
                "urgency": doc.get("priority"),
                "status": doc["state"],
                "deadline": deadline,
                "created_at": datetime.now(UTC),
                "read_at": None,
            },
            session=tx.session,
        )
