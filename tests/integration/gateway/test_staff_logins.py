"""Staff at the gateway: password logins, lockout, admins managing accounts, the front door."""

from __future__ import annotations

import httpx
import pytest

from shared.audit import AuditLog
from tests.integration.gateway.conftest import Gateway, bearer

pytestmark = pytest.mark.integration

STAFF = "/v1/auth/admin/staff"
AGENT_PASSWORD = "Agent-Passw0rd!"


async def new_agent(gateway: Gateway, admin: str, username: str = "agent.li") -> dict[str, str]:
    created = await gateway.client.post(
        STAFF,
        json={
            "username": username,
            "password": AGENT_PASSWORD,
            "roles": ["agent"],
            "org_id": "h1",
            "display_name": "Li",
        },
        headers=bearer(admin),
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


async def test_an_admin_opens_a_staff_account_and_the_agent_logs_in(gateway: Gateway) -> None:
    admin = await gateway.admin_token()
    agent = await new_agent(gateway, admin)
    assert agent["roles"] == ["agent"]
    assert "password" not in str(agent)
    assert "hash" not in str(agent)

    login = await gateway.staff_login("Agent.Li", AGENT_PASSWORD)  # usernames ignore case
    assert login.status_code == 200, login.text
    principal = gateway.app.state.token_verifier.verify(login.json()["access_token"])
    assert principal.roles == {"agent"}
    assert principal.org_id == "h1"
    listed = await gateway.client.get(STAFF, params={"role": "agent"}, headers=bearer(admin))
    assert [s["username"] for s in listed.json()["items"]] == ["agent.li"]
    audit: AuditLog = gateway.app.state.audit
    records = await audit.query()
    assert [r.action for r in records if r.resource == f"staff:{agent['id']}"] == ["staff.create"]

    agent_token = login.json()["access_token"]
    denied = await gateway.client.get(STAFF, headers=bearer(agent_token))
    assert (denied.status_code, denied.json()["code"]) == (403, "forbidden_role")
    taken = await gateway.client.post(
        STAFF,
        json={"username": "agent.li", "password": AGENT_PASSWORD, "roles": ["agent"]},
        headers=bearer(admin),
    )
    assert (taken.status_code, taken.json()["code"]) == (409, "username_taken")


async def test_weak_passwords_and_unknown_roles_are_refused(gateway: Gateway) -> None:
    admin = await gateway.admin_token()
    for password, roles in (("short1A!", ["agent"]), ("alllowercaseletters", ["agent"])):
        weak = await gateway.client.post(
            STAFF,
            json={"username": "nurse.wang", "password": password, "roles": roles},
            headers=bearer(admin),
        )
        assert (weak.status_code, weak.json()["code"]) == (422, "weak_password")
    patient_role = await gateway.client.post(
        STAFF,
        json={"username": "nurse.wang", "password": AGENT_PASSWORD, "roles": ["patient"]},
        headers=bearer(admin),
    )
    assert (patient_role.status_code, patient_role.json()["code"]) == (422, "invalid_roles")
    listed = await gateway.client.get(STAFF, headers=bearer(admin))
    assert [s["username"] for s in listed.json()["items"]] == ["admin"]


async def test_repeated_wrong_passwords_lock_the_account_until_an_admin_unlocks(
    gateway: Gateway,
) -> None:
    admin = await gateway.admin_token()
    agent = await new_agent(gateway, admin)
    unknown = await gateway.staff_login("nobody", AGENT_PASSWORD)
    assert (unknown.status_code, unknown.json()["code"]) == (401, "invalid_credentials")

    for _ in range(gateway.settings.staff_max_failed_logins - 1):
        wrong = await gateway.staff_login("agent.li", "Wrong-Passw0rd!")
        assert wrong.json()["code"] == "invalid_credentials"
    locking = await gateway.staff_login("agent.li", "Wrong-Passw0rd!")
    # a lock looks like a wrong password: nothing tells a guesser which applies
    assert (locking.status_code, locking.json()["code"]) == (401, "invalid_credentials")
    assert "retry-after" not in locking.headers
    right = await gateway.staff_login("agent.li", AGENT_PASSWORD)
    assert right.json()["code"] == "invalid_credentials"  # even the right password waits
    shown = await gateway.client.get(f"{STAFF}/{agent['id']}", headers=bearer(admin))
    assert shown.json()["locked_until"] is not None  # the admin sees the lock

    unlocked = await gateway.client.post(f"{STAFF}/{agent['id']}/unlock", headers=bearer(admin))
    assert unlocked.json()["locked_until"] is None
    assert (await gateway.staff_login("agent.li", AGENT_PASSWORD)).status_code == 200


async def test_disabling_or_resetting_ends_every_login_of_the_account(gateway: Gateway) -> None:
    admin = await gateway.admin_token()
    agent = await new_agent(gateway, admin)
    first = (await gateway.staff_login("agent.li", AGENT_PASSWORD)).json()
    me = await gateway.client.get("/v1/auth/me", headers=bearer(first["access_token"]))
    assert me.json()["username"] == "agent.li"
    assert list(me.json()) == [
        "id",
        "kind",
        "roles",
        "username",
        "display_name",
        "org_id",
        "stored",
    ]

    reset = await gateway.client.post(
        f"{STAFF}/{agent['id']}/password",
        json={"password": "N3w-Passw0rd!!"},
        headers=bearer(admin),
    )
    assert reset.status_code == 204
    ended = await gateway.client.get("/v1/auth/me", headers=bearer(first["access_token"]))
    assert (ended.status_code, ended.json()["code"]) == (401, "token_revoked")
    stale = await gateway.client.post(
        "/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert stale.status_code == 401
    assert (await gateway.staff_login("agent.li", AGENT_PASSWORD)).status_code == 401

    second = (await gateway.staff_login("agent.li", "N3w-Passw0rd!!")).json()
    current = await gateway.client.get(f"{STAFF}/{agent['id']}", headers=bearer(admin))
    etag = current.headers["etag"]
    outdated = await gateway.client.patch(
        f"{STAFF}/{agent['id']}",
        json={"disabled": True},
        headers={**bearer(admin), "if-match": '"0"'},
    )
    assert (outdated.status_code, outdated.json()["code"]) == (412, "version_mismatch")
    unconditional = await gateway.client.patch(
        f"{STAFF}/{agent['id']}", json={"disabled": True}, headers=bearer(admin)
    )
    assert unconditional.status_code == 428, unconditional.text
    assert unconditional.headers["content-type"].startswith("application/problem+json")
    assert unconditional.json()["code"] == "precondition_required"
    unchanged = await gateway.client.get(f"{STAFF}/{agent['id']}", headers=bearer(admin))
    assert (unchanged.headers["etag"], unchanged.json()["disabled"]) == (etag, False)
    disabled = await gateway.client.patch(
        f"{STAFF}/{agent['id']}",
        json={"disabled": True},
        headers={**bearer(admin), "if-match": etag},
    )
    assert disabled.json()["disabled"] is True
    refused = await gateway.client.post(
        "/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert refused.status_code == 401
    login = await gateway.staff_login("agent.li", "N3w-Passw0rd!!")
    assert (login.status_code, login.json()["code"]) == (401, "invalid_credentials")


async def test_staff_change_their_own_password(gateway: Gateway) -> None:
    admin = await gateway.admin_token()
    await new_agent(gateway, admin)
    token = (await gateway.staff_login("agent.li", AGENT_PASSWORD)).json()["access_token"]

    async def change(current: str, new: str) -> httpx.Response:
        return await gateway.client.post(
            "/v1/auth/me/password",
            json={"current_password": current, "new_password": new},
            headers=bearer(token),
        )

    assert (await change("Wrong-Passw0rd!", "An0ther-Passw0rd!")).status_code == 401
    assert (await change(AGENT_PASSWORD, "agent.li-Passw0rd!")).json()["code"] == "weak_password"
    assert (await change(AGENT_PASSWORD, "An0ther-Passw0rd!")).status_code == 204
    assert (await gateway.staff_login("agent.li", "An0ther-Passw0rd!")).status_code == 200


async def test_the_front_door_sets_security_headers_cors_and_size_limits(
    gateway: Gateway,
) -> None:
    response = await gateway.client.get("/healthz")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    docs = await gateway.client.get("/docs")
    assert "script-src 'self'" in docs.headers["content-security-policy"]

    big = await gateway.client.post(
        "/v1/auth/otp",
        content=b"{" + b" " * gateway.settings.max_request_bytes + b"}",
        headers={"content-type": "application/json"},
    )
    assert (big.status_code, big.json()["code"]) == (413, "request_too_large")

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(gateway.settings.max_request_bytes // 65536 + 2):
            yield b" " * 65536

    streamed = await gateway.client.post(
        "/v1/auth/otp", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413

    preflight = await gateway.client.options(
        "/v1/auth/otp",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


@pytest.mark.parametrize("gateway", [{"cors_origins": ["https://console.example"]}], indirect=True)
async def test_configured_frontends_may_call_from_the_browser(gateway: Gateway) -> None:
    preflight = await gateway.client.options(
        "/v1/auth/login/staff",
        headers={
            "origin": "https://console.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://console.example"
    staff_read = await gateway.client.options(
        "/v1/appointments/staff/patients/lookup",
        headers={
            "origin": "https://console.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, x-access-reason, if-match",
        },
    )
    assert staff_read.status_code == 200, staff_read.text  # the console may send a reason


async def test_admins_rotate_the_pii_key_of_account_phones(gateway: Gateway) -> None:
    await gateway.patient_login("13912345678")
    admin = await gateway.admin_token()

    report = await gateway.client.post("/v1/auth/admin/pii/rotate", headers=bearer(admin))

    assert report.status_code == 200, report.text
    fields = report.json()["fields"]
    assert [(f["field"], f["scanned"], f["reencrypted"]) for f in fields] == [("phone_enc", 1, 0)]
    assert report.json()["remaining"] == 0
    patient = await gateway.client.post("/v1/auth/admin/pii/rotate", headers=bearer("x.y.z"))
    assert patient.status_code == 401
