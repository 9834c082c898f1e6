"""RFC 9457 problem responses from shared.problems (in-process ASGI, no servers)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from shared.problems import (
    PROBLEM_MEDIA_TYPE,
    BadRequest,
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Problem,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
    install_problem_handlers,
    problem_responses_doc,
)

pytestmark = pytest.mark.unit

NATIONAL_ID = "11010519491231002X"
SECRET_TEXT = "db-password=hunter2"


class Patient(BaseModel):
    national_id: str = Field(pattern=r"^\d{17}[\dX]$")
    age: int


class Booking(BaseModel):
    slot_id: str
    patient: Patient


def build_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.middleware("http")
    async def request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request.state.request_id = request.headers.get("x-request-id", "req-test")
        return await call_next(request)

    @app.get("/sold-out", responses=problem_responses_doc(404, 409))
    async def sold_out() -> None:
        raise Conflict(
            "slot_sold_out",
            "The slot is sold out.",
            detail_zh="该号源已约满。",
            extra={"opens_at": "2030-01-01T08:00:00+08:00"},
        )

    @app.get("/field-error")
    async def field_error() -> None:
        errors = [FieldError(field="body.slot_id", message="unknown slot", type="unknown")]
        raise Unprocessable("slot_unknown", "No such slot.", errors=errors)

    @app.get("/slow-down")
    async def slow_down() -> None:
        raise TooManyRequests("rate_limited", "Too many requests.", retry_after=7)

    @app.get("/http-exc")
    async def http_exc() -> None:
        raise HTTPException(status_code=409, detail="Already exists")

    @app.post("/bookings")
    async def create(booking: Booking) -> dict[str, str]:
        return {"slot_id": booking.slot_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError(SECRET_TEXT)

    @app.get("/boom-validation")
    async def boom_validation() -> None:
        Patient.model_validate({"national_id": NATIONAL_ID, "age": "not-a-number"})

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def assert_problem(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"https://careloop.dev/problems/{code}"
    assert body["instance"] == resp.request.url.path
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


async def test_problem_members_and_extensions(client: httpx.AsyncClient) -> None:
    resp = await client.get("/sold-out", headers={"x-request-id": "req-42"})
    body = assert_problem(resp, 409, "slot_sold_out")
    assert body["title"] == "Conflict"
    assert body["detail_zh"] == "该号源已约满。"
    assert body["opens_at"] == "2030-01-01T08:00:00+08:00"
    assert body["request_id"] == "req-42"
    assert "errors" not in body


async def test_problem_field_errors(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/field-error"), 422, "slot_unknown")
    assert body["errors"] == [
        {"field": "body.slot_id", "message": "unknown slot", "type": "unknown"}
    ]
    assert "detail_zh" not in body


async def test_retry_after_header(client: httpx.AsyncClient) -> None:
    resp = await client.get("/slow-down")
    assert_problem(resp, 429, "rate_limited")
    assert resp.headers["retry-after"] == "7"


async def test_request_id_falls_back_to_contextvars() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/x")
    async def x() -> None:
        structlog.contextvars.bind_contextvars(request_id="ctx-7")
        raise NotFound("thing_not_found", "No such thing.")

    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            body = assert_problem(await c.get("/x"), 404, "thing_not_found")
    finally:
        structlog.contextvars.clear_contextvars()
    assert body["request_id"] == "ctx-7"


async def test_validation_error_has_dotted_fields_and_no_input(client: httpx.AsyncClient) -> None:
    bad_id = "1101051949SECRET99"
    resp = await client.post(
        "/bookings", json={"slot_id": "s1", "patient": {"national_id": bad_id, "age": "x"}}
    )
    body = assert_problem(resp, 422, "validation_error")
    fields = {e["field"]: e for e in body["errors"]}
    assert set(fields) == {"body.patient.national_id", "body.patient.age"}
    assert fields["body.patient.national_id"]["type"] == "string_pattern_mismatch"
    assert fields["body.patient.age"]["type"] == "int_parsing"
    assert all(set(e) == {"field", "message", "type"} for e in body["errors"])
    assert bad_id not in resp.text
    assert "SECRET" not in resp.text


async def test_missing_body_field(client: httpx.AsyncClient) -> None:
    resp = await client.post("/bookings", json={"patient": {"national_id": NATIONAL_ID, "age": 3}})
    body = assert_problem(resp, 422, "validation_error")
    assert body["errors"] == [
        {"field": "body.slot_id", "message": "Field required", "type": "missing"}
    ]
    assert NATIONAL_ID not in resp.text


async def test_malformed_json_is_a_422_problem(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        "/bookings",
        content=b'{"slot_id": "s1", "patient": {"national_id": "' + NATIONAL_ID.encode() + b'",',
        headers={"content-type": "application/json"},
    )
    body = assert_problem(resp, 422, "validation_error")
    assert body["errors"] == [
        {"field": "body", "message": "Malformed JSON body", "type": "json_invalid"}
    ]
    assert NATIONAL_ID not in resp.text


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/nope"), 404, "not_found")
    assert body["title"] == "Not Found"
    resp = await client.delete("/sold-out")
    assert_problem(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers["allow"]


async def test_starlette_http_exception_keeps_detail(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/http-exc"), 409, "conflict")
    assert body["detail"] == "Already exists"


async def test_unhandled_exception_is_generic_500(client: httpx.AsyncClient) -> None:
    with structlog.testing.capture_logs() as logs:
        resp = await client.get("/boom")
    body = assert_problem(resp, 500, "internal_error")
    assert SECRET_TEXT not in resp.text
    assert "RuntimeError" not in resp.text
    assert "Traceback" not in resp.text
    assert body["request_id"] == "req-test"
    [entry] = [e for e in logs if e["event"] == "unhandled_exception"]
    assert entry["log_level"] == "error"
    assert isinstance(entry["exc_info"], RuntimeError)


async def test_unhandled_validation_error_logs_no_values(client: httpx.AsyncClient) -> None:
    with structlog.testing.capture_logs() as logs:
        resp = await client.get("/boom-validation")
    assert_problem(resp, 500, "internal_error")
    assert NATIONAL_ID not in resp.text
    [entry] = [e for e in logs if e["event"] == "unhandled_exception"]
    assert "exc_info" not in entry
    assert NATIONAL_ID not in repr(entry)
    assert entry["errors"] == [("age", "int_parsing")]
    assert "test_problems.py" in entry["origin"]


@pytest.mark.parametrize(
    ("problem", "status", "header"),
    [
        (BadRequest("bad_cursor", "Bad cursor."), 400, None),
        (Unauthorized("token_missing", "No token."), 401, ("WWW-Authenticate", "Bearer")),
        (Forbidden("forbidden_role", "No."), 403, None),
        (NotFound("slot_not_found", "No slot."), 404, None),
        (Conflict("slot_sold_out", "Sold out."), 409, None),
        (PreconditionFailed("version_mismatch", "Stale."), 412, None),
        (Unprocessable("bad_thing", "Bad."), 422, None),
        (PreconditionRequired("if_match_required", "If-Match."), 428, None),
        (TooManyRequests("rate_limited", "Slow."), 429, ("Retry-After", "1")),
        (ServiceUnavailable("overloaded", "Busy.", retry_after=3), 503, ("Retry-After", "3")),
        (ServiceUnavailable("overloaded", "Busy."), 503, None),
    ],
)
def test_status_subclasses(problem: Problem, status: int, header: tuple[str, str] | None) -> None:
    assert problem.status == status
    assert problem.type.endswith("/" + problem.code)
    if header is None:
        assert problem.headers is None
    else:
        assert problem.headers == {header[0]: header[1]}


def test_unauthorized_bearer_error() -> None:
    problem = Unauthorized("token_invalid", "Bad.", bearer_error="invalid_token")
    assert problem.headers == {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def test_problem_rejects_bad_codes_and_reserved_extensions() -> None:
    with pytest.raises(ValueError, match="snake_case"):
        Conflict("Slot-Sold-Out", "x")
    with pytest.raises(ValueError, match="clash"):
        Conflict("slot_sold_out", "x", extra={"status": 200})


def test_openapi_documents_problem_responses() -> None:
    spec = build_app().openapi()
    responses = spec["paths"]["/sold-out"]["get"]["responses"]
    assert set(responses) >= {"200", "404", "409"}
    schema = responses["409"]["content"][PROBLEM_MEDIA_TYPE]["schema"]
    assert schema == {"$ref": "#/components/schemas/ProblemModel"}
    props = spec["components"]["schemas"]["ProblemModel"]["properties"]
    assert {"type", "title", "status", "detail", "instance", "code", "errors"} <= set(props)


def test_openapi_documents_request_validation_errors_as_problems() -> None:
    spec = build_app().openapi()
    invalid = spec["paths"]["/bookings"]["post"]["responses"]["422"]
    assert invalid["content"] == {
        PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemModel"}}
    }
    schemas = spec["components"]["schemas"]
    assert {"ProblemModel", "FieldError"} <= set(schemas)
    assert "HTTPValidationError" not in schemas  # FastAPI's own 422 body is never sent
