"""How every command on a referral case runs: who may give it, from which state, at which
version, and the one transaction that writes the change, its event and the audit record.

The caller must see the case, act for the right side (only the current receiver accepts,
rejects, books, notes and completes; only the sender cancels), hold a role that gives the
command, find the case in a status the command starts from, and name the version it read
(``If-Match``: 428 without it, 412 when stale). Anything refused writes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from services.referrals.case_routing import CaseRouting
from services.referrals.cases import Cases, may_see, not_found, sides
from services.referrals.domain.workflow import (
    check_from,
    check_side,
    transition,
    version_matches,
)
from services.referrals.store import CASES
from shared.audit import AuditLog
from shared.domain_errors import DomainError
from shared.domain_problems import to_problem
from shared.mongo import Database, Document
from shared.outbox import Outbox, Tx
from shared.principal import Principal, Role
from shared.problems import Forbidden, PreconditionFailed, PreconditionRequired
from shared.scoping import other_org

CLINICAL = frozenset({Role.DOCTOR, Role.COORDINATOR, Role.SERVICE})
COORDINATION = frozenset({Role.COORDINATOR, Role.SERVICE})
ROLES: dict[str, frozenset[Role]] = {
    "submit": CLINICAL,
    "accept": CLINICAL,
    "reject": CLINICAL,
    "request_booking": CLINICAL,
    "add_note": CLINICAL,
    "complete": CLINICAL,
    "cancel": CLINICAL,
    "hold": COORDINATION,
    "resume": COORDINATION,
    "mark_entered_in_error": CLINICAL,
    "override_route": COORDINATION,
}
Work = Callable[[Tx, Document], Awaitable[Document]]


class CommandRunner:
    """Loads the case, checks who may give the command, runs it in one transaction."""

    def __init__(
        self, db: Database, outbox: Outbox, cases: Cases, case_routing: CaseRouting, audit: AuditLog
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.cases = cases
        self.case_routing = case_routing
        self.audit = audit

    async def run(
        self,
        principal: Principal,
        case_id: str,
        command: str,
        if_match: str | None,
        work: Work,
        *,
        reason: str | None = None,
    ) -> Document:
        """:meth:`authorize`, then :meth:`commit`: for commands with nothing else to check."""
        doc = await self.authorize(principal, case_id, command, if_match)
        return await self.commit(principal, doc, command, work, reason=reason)

    async def authorize(
        self, principal: Principal, case_id: str, command: str, if_match: str | None
    ) -> Document:
        """The case, if this caller may give ``command`` to it now (the body is checked after
        this: someone who may not touch the case learns nothing from its validation)."""
        doc = await self.db[CASES].find_one({"_id": case_id})
        if doc is None:
            raise not_found()
        if not (principal.is_staff or Role.SERVICE in principal.roles):
            if await self.cases.owns(principal, doc):
                raise Forbidden(
                    "forbidden_role",
                    "patients read their referrals; staff change them",
                    detail_zh="患者仅可查看转诊单",
                )
            raise not_found()
        if not may_see(principal, doc):
            raise other_org()
        t = transition(command)
        try:
            check_side(t, sides(principal, doc))
        except DomainError as error:  # a refusal: audited as every 403 is
            raise to_problem(error) from None
        if not principal.has_any(*ROLES[command]):
            raise Forbidden(
                "forbidden_role",
                f"'{command}' is for {', '.join(sorted(r.value for r in ROLES[command]))}",
                detail_zh="当前角色无权执行此操作",
            )
        check_from(t, doc["status"])
        if if_match is None:
            raise PreconditionRequired(
                "if_match_required",
                "send If-Match with the version you read (the ETag), so that two people "
                "never change the referral over each other",
                detail_zh="请携带 If-Match 版本号",
            )
        if not version_matches(if_match, doc["version"]):
            raise PreconditionFailed(
                "version_conflict",
                f"the referral changed since you read it (it is now version {doc['version']})",
                detail_zh="转诊单已被他人修改，请刷新后重试",
                extra={"current_version": doc["version"]},
            )
        return doc

    async def commit(
        self,
        principal: Principal,
        doc: Document,
        command: str,
        work: Work,
        *,
        reason: str | None = None,
    ) -> Document:
        """``work`` on the authorized case, with the audit record, in one transaction."""

        async def in_tx(tx: Tx) -> Document:
            after = await work(tx, doc)
            await self.audit.record(
                principal,
                f"referral.{command}",
                patient_id=doc["patient_id"],
                resource=f"referral:{doc['_id']}",
                reason=reason,
                details={"from": doc["status"], "to": after["status"]},
                session=tx.session,
            )
            return after

        return await self.outbox.transaction(in_tx)
