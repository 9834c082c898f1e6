"""Staff accounts behind the alliance's walls: the first admin is the alliance's; an
organization's admin opens, sees and changes its own organization's staff only, and no one
but an alliance admin grants the alliance_admin role."""

from __future__ import annotations

import pytest

from tests.integration.gateway.conftest import Gateway, bearer

pytestmark = pytest.mark.integration

STAFF = "/v1/auth/admin/staff"
PASSWORD = "Staff-Passw0rd!x"


async def open_account(
    gateway: Gateway, admin: str, username: str, roles: list[str], org: str | None
) -> dict[str, object]:
    body = {"username": username, "password": PASSWORD, "roles": roles, "org_id": org}
    created = await gateway.client.post(STAFF, json=body, headers=bearer(admin))
    assert created.status_code == 201, created.text
    return dict(created.json())


async def test_an_organizations_admin_manages_its_own_staff_only(gateway: Gateway) -> None:
    alliance = await gateway.admin_token()
    me = await gateway.client.get("/v1/auth/me", headers=bearer(alliance))
    assert me.json()["roles"] == ["alliance_admin"]
    await open_account(gateway, alliance, "admin.h1", ["admin"], "h1")
    other = await open_account(gateway, alliance, "agent.h2", ["agent"], "h2")
    login = await gateway.staff_login("admin.h1", PASSWORD)
    assert login.status_code == 200, login.text
    h1_admin = bearer(login.json()["access_token"])

    own = await gateway.client.post(
        STAFF,
        json={"username": "nurse.h1", "password": PASSWORD, "roles": ["nurse"], "org_id": "h1"},
        headers=h1_admin,
    )
    assert own.status_code == 201, own.text
    refusals = {
        "another organization": {"roles": ["agent"], "org_id": "h2"},
        "no organization": {"roles": ["agent"], "org_id": None},
        "the alliance role": {"roles": ["alliance_admin"], "org_id": "h1"},
    }
    for what, body in refusals.items():
        refused = await gateway.client.post(
            STAFF, json={"username": "spy.one", "password": PASSWORD, **body}, headers=h1_admin
        )
        assert refused.status_code == 403, (what, refused.text)
    listed = await gateway.client.get(STAFF, headers=h1_admin)
    assert {s["username"] for s in listed.json()["items"]} == {"admin.h1", "nurse.h1"}
    for method, path, body in (
        ("GET", f"{STAFF}/{other['id']}", None),
        ("POST", f"{STAFF}/{other['id']}/password", {"password": "Taken-Over-Passw0rd!"}),
        ("POST", f"{STAFF}/{other['id']}/unlock", None),
    ):
        reply = await gateway.client.request(method, path, json=body, headers=h1_admin)
        assert reply.status_code == 404, (method, path, reply.text)
    still = await gateway.staff_login("agent.h2", PASSWORD)
    assert still.status_code == 200, still.text  # its password was not changed
    everyone = await gateway.client.get(STAFF, headers=bearer(alliance))
    assert {"admin", "admin.h1", "agent.h2", "nurse.h1"} <= {
        s["username"] for s in everyone.json()["items"]
    }
