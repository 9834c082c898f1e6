"""The gateway's own routes in one table: who may call each (the services' routes are in
tests/security). A route the gateway serves that is not declared here fails the test."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from tests.integration.gateway.conftest import Gateway, bearer

pytestmark = pytest.mark.integration

PUBLIC = "public"  # no token: logging in is how one gets one
SIGNED_IN = "signed_in"  # any valid token
ADMIN = "admin"
STAFF = "staff"  # any staff role: a patient's token is refused (403)

GATEWAY_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/v1/auth/otp"): PUBLIC,
    ("POST", "/v1/auth/login/otp"): PUBLIC,
    ("POST", "/v1/auth/login/wechat"): PUBLIC,
    ("POST", "/v1/auth/login/staff"): PUBLIC,
    ("POST", "/v1/auth/refresh"): PUBLIC,
    ("GET", "/v1/auth/me"): SIGNED_IN,
    ("POST", "/v1/auth/me/password"): SIGNED_IN,
    ("PUT", "/v1/auth/me/wechat"): SIGNED_IN,
    ("POST", "/v1/auth/admin/staff"): ADMIN,
    ("GET", "/v1/auth/admin/staff"): ADMIN,
    ("GET", "/v1/auth/admin/staff/{staff_id}"): ADMIN,
    ("PATCH", "/v1/auth/admin/staff/{staff_id}"): ADMIN,
    ("POST", "/v1/auth/admin/staff/{staff_id}/password"): ADMIN,
    ("POST", "/v1/auth/admin/staff/{staff_id}/unlock"): ADMIN,
    ("POST", "/v1/auth/admin/pii/rotate"): ADMIN,
    ("GET", "/v1/auth/admin/audit"): ADMIN,
    ("GET", "/v1/audit"): ADMIN,
    ("GET", "/v1/console/changes"): STAFF,  # the console's live changes (server-sent events)
    ("POST", "/v1/auth/logout"): SIGNED_IN,  # last: it ends the patient's login
}


def served_routes(gateway: Gateway) -> set[tuple[str, str]]:
    return {
        (method, str(context.path))
        # FastAPI keeps included routers nested: walk their effective (prefixed) routes
        for context in iter_route_contexts(gateway.app.routes)
        if isinstance(context.original_route, APIRoute)
        if str(context.path).startswith("/v1/")
        if "{path:path}" not in str(context.path)  # the proxy: tests/security has the services
        for method in set(context.methods or ()) - {"HEAD"}
    }


async def test_every_gateway_route_is_declared_and_guarded(gateway: Gateway) -> None:
    assert served_routes(gateway) == set(GATEWAY_ROUTES)
    patient = (await gateway.patient_login("13800138201"))["access_token"]
    staff_id = "st-does-not-matter"
    for (method, template), who in GATEWAY_ROUTES.items():
        path = template.format(staff_id=staff_id)
        anonymous = await gateway.client.request(method, path, json={})
        if who == PUBLIC:
            assert anonymous.status_code not in (401, 403), (method, path, anonymous.text)
            continue
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.headers["content-type"].startswith("application/problem+json")
        as_patient = await gateway.client.request(method, path, json={}, headers=bearer(patient))
        if who in (ADMIN, STAFF):
            assert as_patient.status_code == 403, (method, path, as_patient.text)
        else:
            assert as_patient.status_code not in (401, 403), (method, path, as_patient.text)


async def test_every_route_that_needs_a_token_declares_it_in_the_merged_openapi(
    gateway: Gateway,
) -> None:
    """The docs page sends the token only to operations that declare a security scheme."""
    document = (await gateway.client.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes, "no security scheme in the merged document"
    for (method, path), who in GATEWAY_ROUTES.items():
        operation = document["paths"][path][method.lower()]
        declared = operation.get("security")
        if who == PUBLIC:
            continue
        assert declared, f"{method} {path} needs a token but declares no security"
        assert all(set(item) <= set(schemes) for item in declared), (method, path, declared)
    # the services' operations behind the gateway too (provider callbacks sign their own)
    for path, item in document["paths"].items():
        if not path.startswith("/v1/notifications/") or "/providers/" in path:
            continue
        for method, operation in item.items():
            assert operation.get("security"), f"{method.upper()} {path} declares no security"
