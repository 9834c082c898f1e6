"""Triage commands on a referral: send a draft, accept, reject (re-routing), route by hand,
hold and resume. Each is one transition of ``domain/workflow.py`` (run by ``commands``)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from services.referrals.case_changes import save_change
from services.referrals.case_routing import CaseRouting
from services.referrals.cases import Cases
from services.referrals.commands import CommandRunner
from services.referrals.domain.workflow import (
    BusinessStatus,
    RejectReason,
    TaskStatus,
    require_text,
)
from services.referrals.events import (
    BookingAsk,
    ReferralAccepted,
)
from shared.domain_errors import Invalid
from shared.ids import new_id
from shared.mongo import Document
from shared.outbox import Tx
from shared.principal import Principal


class Triage:
    """Send, accept, reject, override, hold, resume."""

    def __init__(self, runner: CommandRunner, cases: Cases, case_routing: CaseRouting) -> None:
        self.runner = runner
        self.db = runner.db
        self.cases = cases
        self.case_routing = case_routing

    async def submit(self, principal: Principal, case_id: str, if_match: str | None) -> Document:
        async def work(tx: Tx, doc: Document) -> Document:
            return await self.cases.send_out(tx, principal, doc)

        return await self.runner.run(principal, case_id, "submit", if_match, work)

    async def accept(
        self,
        principal: Principal,
        case_id: str,
        if_match: str | None,
        *,
        department_id: str | None,
        preferred_date: date | None = None,
        book: bool | None = None,
    ) -> Document:
        """Accept into a department. A visit is booked from the referral pool (the saga with
        appointments) unless ``book`` is false; by default a downward referral books none:
        the community center takes the patient into its follow-up, and may book later."""
        case = await self.runner.authorize(principal, case_id, "accept", if_match)
        dept = require_text(department_id, "department_id", "accept")
        if book is None:
            book = case["direction"] != "downward"

        async def work(tx: Tx, doc: Document) -> Document:
            org = await self.cases.directory.require(doc["receiving_org_id"])
            if org.department(dept) is None:
                raise Invalid(
                    "unknown_department",
                    f"the receiving organization has no department '{dept}'",
                    detail_zh="接收机构无此科室",
                    extra={"field": "department_id"},
                )
            now = datetime.now(UTC)
            await self.case_routing.routing.answer_offer(
                doc.get("offer_id"), "accepted", now, tx.session
            )
            await self.case_routing.stop_clock(tx, doc)
            ask = (
                BookingAsk(
                    booking_request_id=new_id(),
                    org_id=doc["receiving_org_id"],
                    department_id=dept,
                    preferred_date=preferred_date or _date(doc.get("preferred_date")),
                )
                if book
                else None
            )
            business = BusinessStatus.AWAITING_BOOKING if ask else BusinessStatus.ACCEPTED
            return await save_change(
                self.db,
                tx,
                doc,
                principal,
                "accept",
                status=TaskStatus.ACCEPTED.value,
                business_status=business.value,
                fields={
                    "receiving_department_id": dept,
                    "accepted_at": now,
                    "due_at": None,
                    "booking": (
                        {**ask.model_dump(mode="json"), "status": "requested"} if ask else None
                    ),
                },
                event=ReferralAccepted,
                event_fields={"booking": ask},
            )

        return await self.runner.commit(principal, case, "accept", work)

    async def reject(
        self,
        principal: Principal,
        case_id: str,
        if_match: str | None,
        *,
        reason_code: str | None,
        reason: str | None,
    ) -> Document:
        case = await self.runner.authorize(principal, case_id, "reject", if_match)
        code = require_text(reason_code, "reason_code", "reject")
        if code not in {r.value for r in RejectReason}:
            raise Invalid(
                "unknown_reason_code",
                f"reason_code must be one of {', '.join(r.value for r in RejectReason)}",
                detail_zh="拒绝原因代码无效",
                extra={"field": "reason_code"},
            )
        if code == RejectReason.OTHER.value:
            require_text(reason, "reason", "reject")

        async def work(tx: Tx, doc: Document) -> Document:
            return await self.case_routing.move_on(
                tx, doc, principal, outcome="rejected", reason_code=code, reason=reason
            )

        return await self.runner.commit(principal, case, "reject", work, reason=reason or code)

    async def override_route(
        self,
        principal: Principal,
        case_id: str,
        if_match: str | None,
        *,
        org_id: str,
        reason: str | None,
    ) -> Document:
        case = await self.runner.authorize(principal, case_id, "override_route", if_match)
        why = require_text(reason, "reason", "override_route")

        async def work(tx: Tx, doc: Document) -> Document:
            declined = set(doc.get("declined_org_ids", []))
            candidates, explanation = await self.case_routing.routing.rank_for(
                doc, declined=declined, session=tx.session
            )
            chosen = next((c for c in candidates if c.org_id == org_id), None)
            if chosen is None or chosen.excluded is not None:
                raise Invalid(
                    "route_not_allowed",
                    f"'{org_id}' cannot take this referral"
                    + (f" ({chosen.excluded})" if chosen else " (not related to the sender)"),
                    detail_zh="该机构不能接收此转诊",
                    extra={"field": "org_id"},
                )
            await self.case_routing.routing.answer_offer(
                doc.get("offer_id"), "overridden", datetime.now(UTC), tx.session
            )
            return await self.case_routing.send(
                tx,
                doc,
                principal,
                chosen,
                candidates,
                f"routed by hand to {org_id}: {why} (the router's view: {explanation})",
                action="override_route",
                routed_by="override",
                reason=why,
            )

        return await self.runner.commit(principal, case, "override_route", work, reason=why)

    async def hold(
        self, principal: Principal, case_id: str, if_match: str | None, *, reason: str | None
    ) -> Document:
        case = await self.runner.authorize(principal, case_id, "hold", if_match)
        why = require_text(reason, "reason", "hold")

        async def work(tx: Tx, doc: Document) -> Document:
            await self.case_routing.stop_clock(tx, doc)
            return await save_change(
                self.db,
                tx,
                doc,
                principal,
                "hold",
                status=TaskStatus.ON_HOLD.value,
                business_status=BusinessStatus.ON_HOLD.value,
                fields={
                    "due_at": None,  # the clock stops while on hold
                    "held": {"status": doc["status"], "business_status": doc["business_status"]},
                },
                reason=why,
            )

        return await self.runner.commit(principal, case, "hold", work, reason=why)

    async def resume(self, principal: Principal, case_id: str, if_match: str | None) -> Document:
        async def work(tx: Tx, doc: Document) -> Document:
            held: dict[str, Any] = doc.get("held") or {}
            back = held.get("status", TaskStatus.REQUESTED.value)
            after = await save_change(
                self.db,
                tx,
                doc,
                principal,
                "resume",
                status=back,
                business_status=held.get("business_status"),
                fields={"held": None},
            )
            if back == TaskStatus.REQUESTED.value:  # the receiver's clock starts again
                after = await self.case_routing.restart_clock(tx, after)
            return after

        return await self.runner.run(principal, case_id, "resume", if_match, work)


def _date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))
