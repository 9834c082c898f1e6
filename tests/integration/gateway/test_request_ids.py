"""The gateway names each request itself: a client's ``X-Request-Id`` names no audit
record, no service call and no SMS (a replayed id must not suppress a login code)."""

from __future__ import annotations

import pytest

from services.gateway.identity.logins import Logins
from shared.audit import AuditLog
from shared.privacy import mask_phone
from tests.integration.gateway.conftest import Gateway, bearer

pytestmark = pytest.mark.integration

CLIENT_ID = "client-chosen-0001"


async def test_audit_records_carry_the_gateways_request_id(gateway: Gateway) -> None:
    admin = await gateway.admin_token()
    created = await gateway.client.post(
        "/v1/auth/admin/staff",
        json={"username": "agent.rid", "password": "Agent-Passw0rd!", "roles": ["agent"]},
        headers={**bearer(admin), "x-request-id": CLIENT_ID},
    )
    assert created.status_code == 201, created.text
    ours = created.headers["x-request-id"]
    assert ours != CLIENT_ID
    guessed = await gateway.client.get(
        "/v1/auth/me",
        headers={**bearer(admin), "x-request-id": CLIENT_ID, "x-careloop-internal": "guess"},
    )
    assert guessed.headers["x-request-id"] != CLIENT_ID  # the in-process mark is a secret
    audit: AuditLog = gateway.app.state.audit
    records = [r for r in await audit.query() if r.action == "staff.create"]
    assert [r.request_id for r in records] == [ours]

    # a proxied call: the service is told the gateway's id (its problem names it)
    patient = gateway.minter.mint("pa-rid-1", ["patient"], patient_ids=["pt-rid-1"])
    read = await gateway.client.get(
        "/v1/notifications/patients/pt-rid-2/messages",
        headers={**bearer(patient), "x-request-id": CLIENT_ID},
    )
    assert read.status_code == 403, read.text
    assert read.headers["x-request-id"] != CLIENT_ID
    assert read.json()["request_id"] == read.headers["x-request-id"]


async def test_a_replayed_request_id_does_not_suppress_a_login_code(gateway: Gateway) -> None:
    phone = "13800138777"
    for _ in range(2):
        asked = await gateway.client.post(
            "/v1/auth/otp", json={"phone": phone}, headers={"x-request-id": CLIENT_ID}
        )
        assert asked.status_code == 202, asked.text
    first = await gateway.code_for(phone)
    second = await gateway.code_for(phone)  # waits for a second SMS to this phone
    assert first.isdigit()
    assert second.isdigit()

    # the sender itself: the same request id twice still texts both codes
    logins: Logins = gateway.app.state.logins
    await logins.send_code(phone, "same-request-id")
    await logins.send_code(phone, "same-request-id")
    sent = await gateway.notifications.wait_for_sandbox(
        4, kind="auth.login_code", address_masked=mask_phone(phone)
    )
    assert len(sent) == 4
