"""Guard: every route takes a staff access reason through ``shared.access_reason`` only.

A route that declares its own ``reason`` query parameter or reads ``X-Access-Reason``
itself would accept the reason in one form and refuse it in another (issue 10): this test
fails for it. Reasons in a command's body (why a booking is cancelled) are not access
reasons and are not checked here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import FastAPI, Header, Query
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from shared import access_reason as shared_reason
from tests.unit.openapi_apps import build_apps

ROOT = Path(__file__).resolve().parents[2]
HEADERS = {"x-access-reason", "x-access-reason*"}
# mentions that do not read the reason: the gateway lets browsers send the header (CORS)
ALLOWED_MENTIONS = {("services/gateway/app.py", "# CORS: staff reasons")}
# code that reads it: the header's name as a string, a parameter for it, the raw query
READS = re.compile(
    r"[\"']x-access-reason\*?[\"']|x_access_reason|query_params[^\n]*[\"']reason[\"']",
    flags=re.IGNORECASE,
)


@pytest.fixture(scope="module")
def apps() -> dict[str, FastAPI]:
    return build_apps()


def walk(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from walk(sub)


def own_reason_params(route: APIRoute) -> list[str]:
    """The reason parameters a route (or a dependency of its own) declares itself."""
    found = []
    for dependant in walk(route.dependant):
        if dependant.call is shared_reason.access_reason:
            continue
        found += [f"query {p.alias}" for p in dependant.query_params if p.alias == "reason"]
        found += [
            f"header {p.alias}" for p in dependant.header_params if p.alias.lower() in HEADERS
        ]
    return found


def test_no_route_reads_a_staff_reason_its_own_way(apps: dict[str, FastAPI]) -> None:
    offenders = {
        f"{name} {sorted(route.methods or ())} {route.path}": own
        for name, app in apps.items()
        for route in app.routes
        if isinstance(route, APIRoute) and (own := own_reason_params(route))
    }
    assert offenders == {}


def test_routes_with_a_reason_declare_both_forms_in_openapi(apps: dict[str, FastAPI]) -> None:
    with_reason = 0
    for app in apps.values():
        for path, operations in app.openapi()["paths"].items():
            for method, operation in operations.items():
                params = {(p["in"], p["name"]) for p in operation.get("parameters", [])}
                if ("query", "reason") in params:
                    with_reason += 1
                    assert ("header", "X-Access-Reason") in params, (method, path)
                    assert ("header", "X-Access-Reason*") in params, (method, path)
    assert with_reason >= 20  # staff reads and on-behalf commands of every service


def test_the_guard_catches_a_route_of_its_own() -> None:
    app = FastAPI()

    @app.get("/own")
    async def own(reason: Annotated[str | None, Query()] = None) -> None: ...

    @app.get("/header")
    async def header(
        x: Annotated[str | None, Header(alias="X-Access-Reason")] = None,
    ) -> None: ...

    @app.get("/shared")
    async def shared(reason: shared_reason.AccessReason = None) -> None: ...

    routes = {r.path: own_reason_params(r) for r in app.routes if isinstance(r, APIRoute)}
    assert routes == {
        "/own": ["query reason"],
        "/header": ["header X-Access-Reason"],
        "/shared": [],
    }


def test_no_source_reads_the_reason_outside_the_shared_module() -> None:
    own = Path(shared_reason.__file__).resolve()
    offenders = []
    for folder in ("services", "shared"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.resolve() == own:
                continue
            relative = path.relative_to(ROOT).as_posix()
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if READS.search(line) and not any(
                    relative == p and marker in line for p, marker in ALLOWED_MENTIONS
                ):
                    offenders.append(f"{relative}:{number}: {line.strip()}")
    assert offenders == []


def test_browsers_may_send_the_reason_header_through_the_gateway() -> None:
    from services.gateway.app import CORS_HEADERS

    assert set(CORS_HEADERS) >= HEADERS


def test_booking_bodies_do_not_offer_a_reason_field(apps: dict[str, FastAPI]) -> None:
    """Staff on-behalf commands take the reason as AccessReason; a ``reason`` in these
    bodies would be a second way (and is ignored), so their schemas do not show one."""
    schemas = apps["appointments"].openapi()["components"]["schemas"]
    for name in ("BookRequest", "RescheduleRequest", "JoinRequest"):
        assert "reason" not in schemas[name]["properties"], name
