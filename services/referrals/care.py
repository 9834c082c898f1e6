"""Commands after acceptance: book again, interim notes, completion with the summary that
closes the loop, cancellation and entered-in-error (run by ``commands``)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.referrals.case_changes import save_change
from services.referrals.case_routing import CaseRouting
from services.referrals.cases import Cases
from services.referrals.commands import CommandRunner
from services.referrals.domain.case import Summary
from services.referrals.domain.workflow import (
    BusinessStatus,
    TaskStatus,
    check_completable,
    require_text,
    transition,
)
from services.referrals.events import (
    BookingAsk,
    ReferralBookingRequested,
    ReferralCancelled,
    ReferralCompleted,
    ReferralNoteAdded,
)
from shared.domain_errors import Conflict, Invalid
from shared.ids import new_id
from shared.mongo import Document
from shared.outbox import Tx
from shared.principal import Principal


class Care:
    """Book again, notes, complete, cancel."""

    def __init__(self, runner: CommandRunner, cases: Cases, case_routing: CaseRouting) -> None:
        self.runner = runner
        self.db = runner.db
        self.cases = cases
        self.case_routing = case_routing

    async def request_booking(
        self,
        principal: Principal,
        case_id: str,
        if_match: str | None,
        *,
        preferred_date: date | None,
        department_id: str | None,
    ) -> Document:
        async def work(tx: Tx, doc: Document) -> Document:
            booking = doc.get("booking") or {}
            if booking.get("status") in ("requested", "booked"):
                raise Conflict(
                    "booking_in_progress",
                    "a booking for this referral is being made or exists; cancel it first",
                    detail_zh="该转诊已有预约或预约处理中",
                )
            dept = department_id or doc["receiving_department_id"]
            org = await self.cases.directory.require(doc["receiving_org_id"])
            if org.department(dept) is None:
                raise Invalid(
                    "unknown_department",
                    f"no department '{dept}' here",
                    detail_zh="接收机构无此科室",
                    extra={"field": "department_id"},
                )
            ask = BookingAsk(
                booking_request_id=new_id(),
                org_id=doc["receiving_org_id"],
                department_id=dept,
                preferred_date=preferred_date,
            )
            return await save_change(
                self.db,
                tx,
                doc,
                principal,
                "request_booking",
                business_status=BusinessStatus.AWAITING_BOOKING.value,
                fields={
                    "receiving_department_id": dept,
                    "booking": {**ask.model_dump(mode="json"), "status": "requested"},
                },
                event=ReferralBookingRequested,
                event_fields={"booking": ask},
            )

        return await self.runner.run(principal, case_id, "request_booking", if_match, work)

    async def add_note(
        self, principal: Principal, case_id: str, if_match: str | None, *, text: str
    ) -> Document:
        note = {
            "note_id": new_id(),
            "text": text,
            "at": datetime.now(UTC),
            "author": {"id": principal.subject, "role": principal.primary_role},
            "org_id": principal.org_id,
        }

        async def work(tx: Tx, doc: Document) -> Document:
            return await save_change(
                self.db,
                tx,
                doc,
                principal,
                "add_note",
                push={"notes": note},
                details={"note_id": note["note_id"]},
                event=ReferralNoteAdded,
                event_fields={
                    "note_id": note["note_id"],
                    "author_org_id": principal.org_id or doc["receiving_org_id"],
                },
            )

        return await self.runner.run(principal, case_id, "add_note", if_match, work)

    async def complete(
        self, principal: Principal, case_id: str, if_match: str | None, *, summary: Summary | None
    ) -> Document:
        case = await self.runner.authorize(principal, case_id, "complete", if_match)
        if summary is None:
            raise Invalid(
                "summary_required",
                "completing a referral needs its summary",
                detail_zh="完成转诊需填写诊疗小结",
                extra={"field": "summary"},
            )

        async def work(tx: Tx, doc: Document) -> Document:
            check_completable(doc["status"], (doc.get("booking") or {}).get("status"))
            now = datetime.now(UTC)
            return await save_change(
                self.db,
                tx,
                doc,
                principal,
                "complete",
                status=TaskStatus.COMPLETED.value,
                business_status=BusinessStatus.SUMMARY_SENT.value,
                fields={"summary": summary.model_dump(), "completed_at": now},
                event=ReferralCompleted,
                event_fields={**summary.model_dump(), "completed_at": now},
            )

        return await self.runner.commit(principal, case, "complete", work)

    async def cancel(
        self,
        principal: Principal,
        case_id: str,
        if_match: str | None,
        *,
        reason: str | None,
        command: str = "cancel",
    ) -> Document:
        case = await self.runner.authorize(principal, case_id, command, if_match)
        why = require_text(reason, "reason", command)

        async def work(tx: Tx, doc: Document) -> Document:
            await self.case_routing.stop_clock(tx, doc)
            t = transition(command)
            booking = doc.get("booking") or {}
            assert t.target is not None
            assert t.business is not None
            return await save_change(
                self.db,
                tx,
                doc,
                principal,
                command,
                status=t.target.value,
                business_status=t.business.value,
                fields={"due_at": None},
                reason=why,
                event=ReferralCancelled,
                event_fields={"reason": why, "appointment_id": booking.get("appointment_id")},
            )

        return await self.runner.commit(principal, case, command, work, reason=why)
