"""Routing a case (the I/O around ``domain/routing.py``): gather what the router weighs,
rank the candidates, store the ranking and why the winner won, and send the case there.

The figures per candidate organization:

* free referral-pool numbers of its department for the specialty, from today to the pool's
  horizon (``referral_pool``, projected from appointments' events by ``pool_projection``);
* its open cases (requested, accepted, in progress or on hold there);
* cases it accepted today (its intake's daily capacity);
* its past acceptance rate and median minutes to accept (``referral_offers``, the record of
  every time a case was offered to an organization and how it answered).
"""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

from services.referrals.directory import Directory
from services.referrals.domain import sla
from services.referrals.domain.directory import Direction, Organization, Urgency
from services.referrals.domain.routing import Ask, Candidate, OrgFigures, Weights, explain, rank
from services.referrals.settings import ReferralsSettings
from services.referrals.store import CASES, OFFERS, POOL
from shared.ids import new_id
from shared.mongo import Database, Document, Session

OPEN = ["requested", "accepted", "in-progress", "on-hold"]


class Routing:
    def __init__(self, db: Database, directory: Directory, settings: ReferralsSettings) -> None:
        self.db = db
        self.directory = directory
        self.settings = settings
        w = settings.routing_weights
        self.weights = Weights(w.pool, w.load, w.acceptance, w.response)

    async def rank_for(
        self, doc: Document, *, declined: set[str], session: Session | None = None
    ) -> tuple[list[Candidate], str]:
        sender = await self.directory.require(doc["sending_org_id"])
        direction = Direction(doc["direction"])
        targets = await self.directory.targets(sender.org_id, direction)
        ask = Ask(
            direction=direction,
            specialty=doc["specialty"],
            preferred_org_id=doc.get("preferred_org_id"),
            declined=frozenset(declined),
        )
        figures = {t.org_id: await self._figures(t, doc["specialty"], session) for t in targets}
        candidates = rank(sender, targets, ask, figures, self.weights)
        return candidates, explain(candidates, ask)

    async def _figures(
        self, org: Organization, specialty: str, session: Session | None
    ) -> OrgFigures:
        now = datetime.now(UTC)
        department = org.department_for(specialty)
        free = 0
        if department is not None:
            today = now.astimezone(org.intake.zone).date()
            horizon = today + timedelta(days=self.settings.pool_horizon_days)
            async for row in self.db[POOL].find(
                {
                    "org_id": org.org_id,
                    "department_id": department.department_id,
                    "clinic_date": {"$gte": today.isoformat(), "$lte": horizon.isoformat()},
                    "cancelled": {"$ne": True},
                },
                session=session,
            ):
                free += max(
                    0, int(row.get("referral_total", 0)) - int(row.get("referral_booked", 0))
                )
        open_cases = await self.db[CASES].count_documents(
            {"receiving_org_id": org.org_id, "status": {"$in": OPEN}}, session=session
        )
        local_midnight = now.astimezone(org.intake.zone).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        accepted_today = await self.db[OFFERS].count_documents(
            {"org_id": org.org_id, "outcome": "accepted", "answered_at": {"$gte": local_midnight}},
            session=session,
        )
        since = now - timedelta(days=self.settings.stats_window_days)
        answered = [
            o
            async for o in self.db[OFFERS]
            .find(
                {"org_id": org.org_id, "offered_at": {"$gte": since}, "outcome": {"$ne": None}},
                session=session,
            )
            .sort("offered_at", -1)
            .limit(500)
        ]
        accepted = [o for o in answered if o["outcome"] == "accepted"]
        return OrgFigures(
            free_pool_numbers=free,
            open_cases=open_cases,
            accepted_today=accepted_today,
            acceptance_rate=len(accepted) / len(answered) if answered else None,
            median_minutes_to_accept=(
                statistics.median(o["minutes"] for o in accepted) if accepted else None
            ),
        )

    async def deadline(self, org_id: str, urgency: str, now: datetime) -> datetime:
        """The acceptance deadline: by urgency, the receiving organization's override first,
        counted from its next intake hours unless an emergency (``domain/sla.py``)."""
        org = await self.directory.require(org_id)
        level = Urgency(urgency)
        default = getattr(self.settings.sla_minutes, level.value)
        return sla.deadline(now, org.intake, level, org.intake.sla_for(level, default))

    async def record_offer(self, case_id: str, org_id: str, now: datetime, session: Session) -> str:
        offer_id = new_id()
        await self.db[OFFERS].insert_one(
            {
                "_id": offer_id,
                "case_id": case_id,
                "org_id": org_id,
                "offered_at": now,
                "outcome": None,
                "answered_at": None,
                "minutes": None,
            },
            session=session,
        )
        return offer_id

    async def answer_offer(
        self, offer_id: str | None, outcome: str, now: datetime, session: Session
    ) -> None:
        """How the organization answered: accepted, rejected or timeout (the SLA passed)."""
        if offer_id is None:
            return
        offer = await self.db[OFFERS].find_one({"_id": offer_id}, session=session)
        if offer is None or offer["outcome"] is not None:
            return
        offered: datetime = offer["offered_at"]
        if offered.tzinfo is None:
            offered = offered.replace(tzinfo=UTC)
        await self.db[OFFERS].update_one(
            {"_id": offer_id},
            {
                "$set": {
                    "outcome": outcome,
                    "answered_at": now,
                    "minutes": round((now - offered).total_seconds() / 60, 2),
                }
            },
            session=session,
        )


def routing_document(
    candidates: list[Candidate], explanation: str, *, attempt: int, by: str, now: datetime
) -> dict[str, Any]:
    return {
        "attempt": attempt,
        "candidates": [c.to_document() for c in candidates],
        "explanation": explanation,
        "routed_by": by,
        "routed_at": now,
    }
