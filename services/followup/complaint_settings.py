"""An organization's complaint settings: its deadlines (``ComplaintDeadlines``, the 2019
rules' defaults when none are stored) and its complaint desk, the owner of complaints
patients raise through the API (``desk_owner_id``, default ``desk:<org>``).

One document per organization in ``complaint_settings`` (``_id``: the organization),
versioned for ``If-Match``. A change applies to complaints raised (or reclassified) after
it and to escalations falling due after it; stored deadlines are not moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import Field

from services.followup.domain.complaint import ComplaintDeadlines
from services.followup.store import COMPLAINT_SETTINGS
from shared.audit import AuditLog
from shared.mongo import Database, Session
from shared.principal import Principal
from shared.problems import PreconditionFailed
from shared.scoping import ensure_org

log = structlog.get_logger(__name__)


def default_desk(org_id: str) -> str:
    return f"desk:{org_id}"


class ComplaintSettingsIn(ComplaintDeadlines):
    """The deadlines and, optionally, who owns complaints raised by patients."""

    desk_owner_id: str | None = Field(
        None, min_length=1, max_length=64, description="default: desk:<org_id>"
    )


@dataclass(frozen=True)
class OrgComplaintSettings:
    org_id: str
    deadlines: ComplaintDeadlines
    desk_owner_id: str
    version: int  # 0: nothing stored, the defaults apply

    def view(self) -> dict[str, Any]:
        return {
            "org_id": self.org_id,
            **self.deadlines.model_dump(mode="json"),
            "desk_owner_id": self.desk_owner_id,
            "version": self.version,
        }


class ComplaintSettings:
    def __init__(self, db: Database, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    async def of(self, org_id: str, session: Session | None = None) -> OrgComplaintSettings:
        """The organization's settings, the defaults when none are stored."""
        doc = await self.db[COMPLAINT_SETTINGS].find_one({"_id": org_id}, session=session)
        if doc is None:
            return OrgComplaintSettings(org_id, ComplaintDeadlines(), default_desk(org_id), 0)
        return OrgComplaintSettings(
            org_id=org_id,
            deadlines=ComplaintDeadlines.model_validate(doc["deadlines"]),
            desk_owner_id=doc.get("desk_owner_id") or default_desk(org_id),
            version=int(doc["version"]),
        )

    async def view_for(
        self, principal: Principal, org_id: str, reason: str | None
    ) -> OrgComplaintSettings:
        ensure_org(principal, org_id)
        found = await self.of(org_id)
        await self.audit.record(
            principal,
            "followup.complaint_settings.read",
            patient_id=None,
            resource=f"complaint_settings:{org_id}",
            reason=reason,
            org_id=org_id,
        )
        return found

    async def put(
        self,
        principal: Principal,
        org_id: str,
        body: ComplaintSettingsIn,
        expected_version: int | None,
        session: Session,
    ) -> OrgComplaintSettings:
        """Replace the settings (at ``expected_version`` when given: 412 when stale)."""
        ensure_org(principal, org_id)
        current = await self.of(org_id, session)
        if expected_version is not None and expected_version != current.version:
            raise PreconditionFailed(
                "version_conflict",
                f"the settings changed since you read them (now version {current.version})",
                detail_zh="投诉设置已被他人修改，请刷新后重试",
                extra={"current_version": current.version},
            )
        deadlines = ComplaintDeadlines.model_validate(body.model_dump(exclude={"desk_owner_id"}))
        version = current.version + 1
        await self.db[COMPLAINT_SETTINGS].replace_one(
            {"_id": org_id},
            {
                "deadlines": deadlines.model_dump(mode="json"),
                "desk_owner_id": body.desk_owner_id,
                "version": version,
                "updated_at": datetime.now(UTC),
                "updated_by": principal.subject,
            },
            upsert=True,
            session=session,
        )
        await self.audit.record(
            principal,
            "followup.complaint_settings.update",
            patient_id=None,
            resource=f"complaint_settings:{org_id}",
            org_id=org_id,
            session=session,
            details={"version": version},
        )
        log.info("followup.complaint_settings.updated", org_id=org_id, version=version)
        return OrgComplaintSettings(
            org_id, deadlines, body.desk_owner_id or default_desk(org_id), version
        )
