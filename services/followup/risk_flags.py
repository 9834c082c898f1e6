"""Risk flags: what a completed questionnaire response raised (``domain/risk_rules.py``).

Each rule that holds makes one flag (one per response and rule), announced as
``followup.risk.flagged`` (urgent ones alert the doctor through notifications), and the
plan (and so its calls on the call list) carries the highest risk. Rules with ``revisit``
ask appointments for one revisit per response (``followup.revisit_requested`` with the
flag); its reply is recorded on the flag(s). A rejected revisit leaves the flag open and
marks it ``needs_attention``: it comes first on the doctors' and nurses' list until one
acknowledges it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from services.followup.domain.calls import RISK_RANK, RiskLevel
from services.followup.domain.questionnaire import QuestionnaireDefinition
from services.followup.domain.questionnaire_answers import ValidatedAnswers
from services.followup.domain.risk_rules import evaluate, highest_level
from services.followup.events import RiskFlagged
from services.followup.plans import Plans
from services.followup.revisits import Revisits
from services.followup.store import RISK_FLAGS
from shared.audit import AuditLog
from shared.domain_errors import Conflict, NotFound
from shared.events import make_event
from shared.ids import new_id
from shared.mongo import Database, Document
from shared.outbox import Tx
from shared.principal import Principal
from shared.scoping import ensure_org, org_filter

log = structlog.get_logger(__name__)

FACTS = ("plan_id", "patient_id", "org_id", "department_id", "doctor_id")
VIEW_KEYS = (
    "response_id",
    "task_id",
    *FACTS,
    "rule_id",
    "level",
    "urgent",
    "reason",
    "reason_en",
    "raised_at",
    "status",
    "revisit_request_id",
    "revisit",
    "needs_attention",
    "acknowledged_by",
    "acknowledged_at",
    "note",
    "response_seconds",
)


def flag_view(flag: Document) -> dict[str, Any]:
    return {"flag_id": flag["_id"], **{k: flag.get(k) for k in VIEW_KEYS}}


def flag_not_found(flag_id: str) -> NotFound:
    return NotFound("risk_flag_not_found", f"no risk flag {flag_id!r}", detail_zh="风险提示不存在")


class RiskFlags:
    def __init__(self, db: Database, plans: Plans, revisits: Revisits, audit: AuditLog) -> None:
        self.db = db
        self.plans = plans
        self.revisits = revisits
        self.audit = audit

    async def raise_for(
        self,
        tx: Tx,
        response: Document,
        definition: QuestionnaireDefinition,
        validated: ValidatedAnswers,
    ) -> list[str]:
        """Flag what the completed ``response`` raised; returns the flags' ids."""
        hits = evaluate(definition, validated)
        if not hits:
            return []
        now = datetime.now(UTC)
        facts = {k: response.get(k) for k in FACTS}
        flag_ids = [new_id() for _ in hits]
        ask_id = None
        revisit_flags = [fid for fid, hit in zip(flag_ids, hits, strict=True) if hit.revisit]
        if revisit_flags:
            task = {"_id": response.get("task_id"), **facts}
            ask_id = await self.revisits.ask(tx, task, reason="risk_flag", flag_id=revisit_flags[0])
        docs = [
            {
                "_id": flag_id,
                "flag_id": flag_id,
                "response_id": response["_id"],
                "task_id": response.get("task_id"),
                **facts,
                "rule_id": hit.rule_id,
                "level": hit.level,
                "rank": RISK_RANK[RiskLevel(hit.level)],
                "urgent": hit.urgent,
                "reason": hit.reason,
                "reason_en": hit.reason_en,
                "raised_at": now,
                "status": "open",
                "needs_attention": False,
                "revisit_request_id": ask_id if hit.revisit else None,
                "revisit": {"status": "requested"} if hit.revisit else None,
            }
            for flag_id, hit in zip(flag_ids, hits, strict=True)
        ]
        await self.db[RISK_FLAGS].insert_many(docs, session=tx.session)
        for doc in docs:
            payload = RiskFlagged(
                **facts,
                flag_id=doc["_id"],
                response_id=response["_id"],
                rule_id=doc["rule_id"],
                level=doc["level"],
                urgent=doc["urgent"],
                reason=doc["reason"],
                revisit=doc["revisit_request_id"] is not None,
            )
            tx.emit(make_event(payload, source="followup", subject=response["patient_id"]))
        level = highest_level(hits)
        assert level is not None
        if response.get("plan_id"):
            await self.plans.raise_risk(tx, response["plan_id"], level, RISK_RANK[RiskLevel(level)])
        log.info(
            "followup.risk.flagged",
            response_id=response["_id"],
            flags=len(docs),
            level=level,
            revisit_request_id=ask_id,
        )
        return flag_ids

    async def revisit_replied(self, tx: Tx, data: Mapping[str, Any], *, booked: bool) -> None:
        """Appointments' reply to a flag's revisit ask: recorded on its flag(s)."""
        ask_id = data.get("revisit_request_id")
        if not ask_id:
            return
        fields: dict[str, Any]
        if booked:
            revisit = {
                "status": "booked",
                "appointment_id": data.get("appointment_id"),
                "starts_at": data.get("starts_at"),
            }
            fields = {"revisit": revisit}
        else:  # a human must follow it up: first on the flag list until acknowledged
            revisit = {"status": "rejected", "code": data.get("code")}
            fields = {"revisit": revisit, "needs_attention": True}
        result = await self.db[RISK_FLAGS].update_many(
            {"revisit_request_id": ask_id}, {"$set": fields}, session=tx.session
        )
        if result.matched_count:
            log.info("followup.risk.revisit_replied", revisit_request_id=ask_id, booked=booked)

    # --- the doctors' and nurses' list --------------------------------------------------------

    async def list_for(
        self,
        principal: Principal,
        *,
        org_id: str | None,
        status: str,
        level: str | None,
        limit: int,
        reason: str | None,
    ) -> list[dict[str, Any]]:
        """Flags of the caller's organization: needing attention, urgent, then newest."""
        org = org_filter(principal) or org_id
        query: dict[str, Any] = {"status": status}
        if org is not None:
            query["org_id"] = org
        if level:
            query["level"] = level
        order = [("needs_attention", -1), ("urgent", -1), ("raised_at", -1), ("_id", -1)]
        docs = await self.db[RISK_FLAGS].find(query, sort=order).to_list(limit)
        await self.audit.record(
            principal,
            "followup.risk_flags.read",
            patient_id=None,
            resource="risk_flags",
            reason=reason,
            org_id=org,
            details={"count": len(docs), "patients": sorted({d["patient_id"] for d in docs})},
        )
        return [flag_view(d) for d in docs]

    async def acknowledge(
        self, principal: Principal, flag_id: str, note: str | None, reason: str | None
    ) -> dict[str, Any]:
        """A doctor or nurse saw the flag: ``response_seconds`` from raised to now."""
        flag = await self.db[RISK_FLAGS].find_one({"_id": flag_id})
        if flag is None:
            raise flag_not_found(flag_id)
        ensure_org(principal, flag["org_id"])
        if flag["status"] != "open":
            raise _already_acknowledged()
        now = datetime.now(UTC)
        raised = flag["raised_at"]
        if raised.tzinfo is None:
            raised = raised.replace(tzinfo=UTC)
        fields = {
            "status": "acknowledged",
            "acknowledged_by": principal.subject,
            "acknowledged_at": now,
            "note": note,
            "needs_attention": False,
            "response_seconds": round((now - raised).total_seconds(), 3),
        }
        updated = await self.db[RISK_FLAGS].find_one_and_update(
            {"_id": flag_id, "status": "open"}, {"$set": fields}, return_document=True
        )
        if updated is None:  # acknowledged meanwhile
            raise _already_acknowledged()
        await self.audit.record(
            principal,
            "followup.risk_flag.acknowledge",
            patient_id=flag["patient_id"],
            resource=f"risk_flag:{flag_id}",
            reason=reason,
            org_id=flag["org_id"],
            details={"rule_id": flag["rule_id"], "level": flag["level"]},
        )
        return flag_view(updated)


def _already_acknowledged() -> Conflict:
    return Conflict(
        "flag_already_acknowledged",
        "the risk flag was acknowledged already",
        detail_zh="该风险提示已被确认",
    )
