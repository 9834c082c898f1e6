"""Staff access leaves audit records in the service's own collection; patients' own don't."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pymongo import AsyncMongoClient

from shared.audit import AUDIT_COLLECTION, AuditLog
from shared.mongo import Document, in_transaction
from shared.principal import Principal, Role
from shared.settings import ServiceSettings
from tests.factories import make_national_id

pytestmark = pytest.mark.integration

AGENT = Principal(subject="agent-7", roles=frozenset({Role.AGENT}), org_id="h1")
PATIENT = Principal(
    subject="acct-1", roles=frozenset({Role.PATIENT}), patient_ids=frozenset({"p1"})
)


async def test_staff_reads_are_recorded_and_queryable(
    mongo: AsyncMongoClient[Document], make_settings: Callable[..., ServiceSettings]
) -> None:
    db = mongo[make_settings().database_name]
    audit = AuditLog(db)
    await audit.ensure_indexes()
    national_id = make_national_id()
    first = await audit.record(
        AGENT,
        "patient.read",
        patient_id="p1",
        resource="patient:p1",
        reason="hotline call",
        details={"looked_up_by": national_id},
    )
    await audit.record(
        AGENT,
        "appointment.cancel",
        patient_id="p2",
        resource="appointment:9",
        reason="patient asked by phone",
    )
    assert first is not None
    assert (
        await audit.record(PATIENT, "patient.read", patient_id="p1", resource="patient:p1") is None
    )

    for_p1 = await audit.query(patient_id="p1")
    assert [r.action for r in for_p1] == ["patient.read"]
    assert for_p1[0].actor_id == "agent-7"
    assert for_p1[0].actor_role == "agent"
    assert for_p1[0].reason == "hotline call"
    assert national_id not in str(for_p1[0].details)
    by_agent = await audit.query(actor_id="agent-7")
    assert [r.action for r in by_agent] == ["appointment.cancel", "patient.read"]
    assert await db[AUDIT_COLLECTION].count_documents({}) == 2


async def test_an_audit_record_inside_a_failed_transaction_is_rolled_back(
    mongo: AsyncMongoClient[Document], make_settings: Callable[..., ServiceSettings]
) -> None:
    db = mongo[make_settings().database_name]
    audit = AuditLog(db)
    await audit.ensure_indexes()

    async def change_and_fail(session: object) -> None:
        await audit.record(
            AGENT,
            "appointment.cancel",
            patient_id="p1",
            resource="a:1",
            reason="x",
            session=session,
        )  # type: ignore[arg-type]
        raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await in_transaction(mongo, change_and_fail)  # type: ignore[arg-type]
    assert await db[AUDIT_COLLECTION].count_documents({}) == 0
