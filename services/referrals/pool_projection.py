"""Free referral-pool numbers per session, projected from appointments' events.

``appointment.schedule.published`` gives a session's referral pool (``pools.referral``);
a booking from that pool (``appointment.booked`` with ``pool == "referral"``) takes one,
its cancellation gives it back, a cancelled session (停诊) closes all of it. Each event is
handled once (the consumer's handled-events record, in the same transaction), so the
counts stay exact across redeliveries. The router reads the sum over the next days.
"""

from __future__ import annotations

from typing import Any

from services.referrals.store import POOL
from shared.mongo import Database, Session

REFERRAL_POOL = "referral"


class PoolProjection:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def schedule_published(self, session: Session, data: dict[str, Any]) -> None:
        await self.db[POOL].update_one(
            {"_id": data["schedule_id"]},
            {
                "$set": {
                    "org_id": data["org_id"],
                    "department_id": data["department_id"],
                    "resource_id": data["resource_id"],
                    "session": data["session"],
                    "clinic_date": str(data["clinic_date"]),
                    "referral_total": int(data.get("pools", {}).get(REFERRAL_POOL, 0)),
                    "cancelled": False,
                },
                "$setOnInsert": {"referral_booked": 0},
            },
            upsert=True,
            session=session,
        )

    async def schedule_cancelled(self, session: Session, data: dict[str, Any]) -> None:
        await self.db[POOL].update_one(
            {"_id": data["schedule_id"]}, {"$set": {"cancelled": True}}, session=session
        )

    async def number_taken(self, session: Session, data: dict[str, Any], delta: int) -> None:
        """A referral-pool number booked (+1) or given back (-1)."""
        if data.get("pool") != REFERRAL_POOL:
            return
        session_of = {  # a doctor's session: one schedule a resource, date and half-day
            "org_id": data["org_id"],
            "resource_id": data["resource_id"],
            "clinic_date": str(data["clinic_date"]),
            "session": data["session"],
        }
        await self.db[POOL].update_one(
            session_of, {"$inc": {"referral_booked": delta}}, session=session
        )
