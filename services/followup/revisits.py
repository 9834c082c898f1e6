"""Revisits: a task asks appointments for one (``followup.revisit_requested``, booked from
the department's reserved pool) and its reply closes the task, or puts it on the call
list for an agent to offer a visit (no reserved number free)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from services.followup.events import RevisitRequested
from services.followup.plans import Plans
from services.followup.settings import FollowupSettings
from services.followup.store import TASKS
from shared.events import make_event
from shared.ids import new_id
from shared.mongo import Database, Document
from shared.outbox import Tx


class Revisits:
    def __init__(self, db: Database, plans: Plans, settings: FollowupSettings) -> None:
        self.db = db
        self.plans = plans
        self.settings = settings

    async def ask(
        self,
        tx: Tx,
        task: Document,
        *,
        reason: str,
        around: datetime | None = None,
        flag_id: str | None = None,
    ) -> str:
        """Ask appointments for a revisit of the task's patient (``revisit_request_id``)."""
        ask_id = new_id()
        window = timedelta(days=self.settings.revisit_window_days)
        today = datetime.now(UTC)
        earliest = max(today, around - window) if around else today
        latest = (around + window) if around else today + 2 * window
        payload = RevisitRequested(
            plan_id=task["plan_id"],
            patient_id=task["patient_id"],
            org_id=task["org_id"],
            department_id=task.get("department_id"),
            doctor_id=task.get("doctor_id"),
            revisit_request_id=ask_id,
            reason=reason,
            earliest_date=earliest.date(),
            latest_date=latest.date(),
            flag_id=flag_id,
            task_id=task["_id"],
        )
        tx.emit(make_event(payload, source="followup", subject=task["patient_id"]))
        return ask_id

    async def booked(self, tx: Tx, data: Mapping[str, Any]) -> None:
        """Appointments booked the revisit a task asked for: the task is done."""
        task = await self.db[TASKS].find_one(
            {"revisit_request_id": data["revisit_request_id"]}, session=tx.session
        )
        if task is None:
            return
        revisit = {
            "status": "booked",
            "appointment_id": data.get("appointment_id"),
            "starts_at": data.get("starts_at"),
        }
        fields: dict[str, Any] = {"revisit": revisit}
        if task["status"] == "waiting":
            fields["status"] = "done"
            fields["outcome"] = "revisit_booked"
        await self._set(tx, task, fields)
        await self.plans.complete_if_done(tx, task["plan_id"])

    async def rejected(self, tx: Tx, data: Mapping[str, Any]) -> None:
        """No reserved number: the task goes on the call list, for an agent to offer one."""
        task = await self.db[TASKS].find_one(
            {"revisit_request_id": data["revisit_request_id"]}, session=tx.session
        )
        if task is None:
            return
        fields: dict[str, Any] = {"revisit": {"status": "rejected", "code": data.get("code")}}
        if task["status"] == "waiting":
            fields |= {
                "status": "due",
                "kind": "call",
                "priority": "high",
                "title": f"Offer a revisit ({task['title']})",
            }
        await self._set(tx, task, fields)

    async def _set(self, tx: Tx, task: Document, fields: dict[str, Any]) -> None:
        await self.db[TASKS].update_one(
            {"_id": task["_id"]}, {"$set": fields, "$inc": {"version": 1}}, session=tx.session
        )
