"""``GET /v1/audit`` at the gateway: the real appointments and notifications services behind it.

The gateway app is the real one with the audit view mounted as ``services/gateway/app.py``
will mount it; the unavailable-service case uses the router on a plain app, pointed at a
port nobody listens on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from devstack.processes import free_port
from services.appointments.app import create_app as appointments_app
from services.appointments.settings import AppointmentsSettings
from services.gateway.app import create_app as gateway_app
from services.gateway.audit_view import audit_view_router
from services.gateway.settings import GatewaySettings
from services.notifications.settings import NotificationsSettings
from shared.audit import AUDIT_COLLECTION, AuditRecord
from shared.auth import TokenMinter
from shared.mongo import Document
from shared.principal import Role
from shared.problems import install_problem_handlers
from shared.settings import ServiceSettings
from tests.integration.notifications.conftest import running_notifications
from tests.support.server import serve

pytestmark = pytest.mark.integration

PATIENT = "p-gw"


@dataclass
class Stack:
    client: httpx.AsyncClient  # to the gateway
    urls: dict[str, str]
    databases: dict[str, str]
    minter: TokenMinter

    def token(self, subject: str, role: Role) -> dict[str, str]:
        return {"authorization": f"Bearer {self.minter.mint(subject, [role], org_id='h1')}"}


@pytest.fixture
async def services(
    make_settings: Callable[..., ServiceSettings],
    minter: TokenMinter,
    jwt_keys: tuple[str, str],
) -> AsyncIterator[Stack]:
    appointments = make_settings("appointments", AppointmentsSettings)
    notifications = make_settings(
        "notifications", NotificationsSettings, quiet_hours_start="00:00", quiet_hours_end="00:00"
    )
    assert isinstance(notifications, NotificationsSettings)
    async with (
        serve(appointments_app(appointments)) as appointments_url,
        running_notifications(notifications, minter) as notes,
    ):
        urls = {"appointments": appointments_url, "notifications": str(notes.client.base_url)}
        urls = {name: url.rstrip("/") for name, url in urls.items()}
        settings = make_settings(
            "gateway", GatewaySettings, jwt_private_key=jwt_keys[0], service_urls=urls
        )
        assert isinstance(settings, GatewaySettings)
        app = gateway_app(settings)  # its /v1/audit also reads its own log ("auth")
        async with serve(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
            names = {"appointments": appointments.database_name}
            names["notifications"] = notifications.database_name
            yield Stack(client, urls, names, minter)


async def seed(services: Stack, mongo: AsyncMongoClient[Document]) -> list[tuple[str, str]]:
    """Eight records an hour old: the first page holds appointments' only, then they
    interleave (one tie on ``at``, broken by id)."""
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    seconds = {"appointments": (0, 4, 7, 8, 9), "notifications": (1, 3, 4)}
    made: list[tuple[datetime, str, str]] = []
    for service, offsets in seconds.items():
        for n in offsets:
            record = AuditRecord(
                at=base + timedelta(seconds=n),
                actor_id=f"agent-{n}",
                actor_role="agent",
                action="appointment.read",
                patient_id=PATIENT,
                resource=f"{service}:{n}",
                reason="seed",
            )
            document = {**record.model_dump(exclude={"id"}), "_id": record.id}
            await mongo[services.databases[service]][AUDIT_COLLECTION].insert_one(document)
            made.append((record.at, record.id, service))
    return [(service, id_) for _, id_, service in sorted(made, reverse=True)]


async def test_merges_newest_first_and_pages_with_the_combined_cursor(
    services: Stack, mongo: AsyncMongoClient[Document]
) -> None:
    expected = await seed(services, mongo)
    # the alliance's admin reads every organization's records
    admin = {**services.token("admin-1", Role.ALLIANCE_ADMIN), "x-request-id": "audit-view-test-1"}
    seen: list[tuple[str, str]] = []
    request_ids: list[str] = []
    cursor: str | None = None
    for size in (3, 3, 2):
        params: dict[str, Any] = {"patient_id": PATIENT, "limit": 3}
        if cursor:
            params["cursor"] = cursor
        response = await services.client.get("/v1/audit", params=params, headers=admin)
        assert response.status_code == 200, response.text
        request_ids.append(response.headers["x-request-id"])
        page = response.json()
        assert len(page["items"]) == size
        seen += [(i["service"], i["id"]) for i in page["items"]]
        cursor = page["next_cursor"]
    # each page wrote audit.read records for this patient in both services: none slipped
    # in, not even from notifications, first asked for anything older than page 1 on page 2
    assert seen == expected
    assert cursor is None

    fresh = await services.client.get(
        "/v1/audit", params={"patient_id": PATIENT, "action": "audit.read"}, headers=admin
    )
    reads = fresh.json()["items"]
    # the gateway's own log ("auth") had nothing for the patient: asked on page 1 only
    services_read = sorted(r["service"] for r in reads)
    assert services_read == ["appointments"] * 3 + ["auth"] + ["notifications"] * 3
    assert {(r["actor_id"], r["actor_role"]) for r in reads} == {("admin-1", "alliance_admin")}
    # each request's own id, the gateway's: never the client's X-Request-Id
    request_ids.append(fresh.headers["x-request-id"])
    assert {r["request_id"] for r in reads} <= set(request_ids)
    # the gateway's own part, asked in-process, keeps the outer request's id
    assert [r["request_id"] for r in reads if r["service"] == "auth"] == request_ids[:1]
    assert "audit-view-test-1" not in request_ids
    ats = [(r["at"], r["id"]) for r in reads]
    assert ats == sorted(ats, reverse=True)


async def test_admins_only_and_a_foreign_cursor_is_refused(services: Stack) -> None:
    assert (await services.client.get("/v1/audit")).status_code == 401
    for role in (Role.AGENT, Role.PATIENT, Role.NURSE):
        denied = await services.client.get("/v1/audit", headers=services.token(f"{role}-1", role))
        assert (denied.status_code, denied.json()["code"]) == (403, "forbidden_role")
    admin = services.token("admin-1", Role.ADMIN)
    for cursor in ("not-base64!", "eyJ2IjoyfQ", "e30"):
        bad = await services.client.get("/v1/audit", params={"cursor": cursor}, headers=admin)
        assert (bad.status_code, bad.json()["code"]) == (400, "audit_cursor_invalid")
    naive = await services.client.get(
        "/v1/audit", params={"since": "2026-01-01T00:00:00"}, headers=admin
    )
    assert naive.status_code == 422


async def test_a_service_that_cannot_answer_fails_the_request_by_name(services: Stack) -> None:
    urls = {**services.urls, "referrals": f"http://127.0.0.1:{free_port()}"}
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(audit_view_router(urls))  # no gateway token check: the services decide
    async with httpx.AsyncClient(timeout=10) as upstream:
        app.state.http = upstream
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            down = await client.get("/v1/audit", headers=services.token("admin-1", Role.ADMIN))
            assert down.status_code == 503
            body = down.json()
            assert (body["code"], body["services"]) == ("audit_source_unavailable", ["referrals"])
            assert down.headers["content-type"].startswith("application/problem+json")
            # the services still refuse a non-admin, and that answer is passed on as it is
            agent = await client.get("/v1/audit", headers=services.token("agent-1", Role.AGENT))
            assert (agent.status_code, agent.json()["code"]) == (403, "forbidden_role")
            assert agent.json()["service"] in {"appointments", "notifications"}
