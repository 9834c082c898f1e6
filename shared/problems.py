"""RFC 9457 problem details for every service (docs/architecture.md §7).

Raise a :class:`Problem` (or one of the status subclasses) anywhere in a request;
the handlers installed by :func:`install_problem_handlers` turn it, request
validation errors, Starlette ``HTTPException`` s and unexpected exceptions into
``application/problem+json`` bodies with a stable ``code``.

``type`` is ``https://careloop.dev/problems/<code>``. It is an identifier only:
nothing fetches it and it need not resolve.

Privacy: request validation errors never echo the submitted value (pydantic's
``input`` and ``ctx`` are dropped) because it may hold a national ID, and
unexpected exceptions never reach the body.
"""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar, TypedDict, Unpack

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError, ValidationException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://careloop.dev/problems/"  # an identifier, never dereferenced
_CODE_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_RESERVED = frozenset(
    {"type", "title", "status", "detail", "instance", "code", "request_id", "detail_zh", "errors"}
)
_KNOWN_STATUSES = frozenset(int(s) for s in HTTPStatus)
_log = structlog.get_logger("careloop.problems")


class FieldError(BaseModel):
    """One invalid input: ``field`` is a dotted path such as ``body.patient.national_id``."""

    model_config = ConfigDict(frozen=True)

    field: str
    message: str
    type: str = "invalid"


class ProblemModel(BaseModel):
    """OpenAPI schema of a problem body (extension members such as ``opens_at`` may follow)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=[f"{PROBLEM_TYPE_BASE}slot_sold_out"])
    title: str = Field(examples=["Conflict"])
    status: int = Field(examples=[409])
    detail: str
    instance: str = Field(description="Path of the request that failed.")
    code: str = Field(description="Stable snake_case error code.", examples=["slot_sold_out"])
    request_id: str | None = None
    detail_zh: str | None = Field(default=None, description="Chinese detail for patients.")
    errors: list[FieldError] | None = None


class ProblemOptions(TypedDict, total=False):
    """Optional members shared by every :class:`Problem` constructor."""

    title: str | None
    detail_zh: str | None  # Chinese detail for patient-facing errors
    errors: Sequence[FieldError] | None
    headers: Mapping[str, str] | None
    extra: Mapping[str, Any] | None  # extension members, e.g. {"opens_at": "..."}


class Problem(Exception):
    """An error with a stable snake_case ``code``, rendered as RFC 9457 problem details."""

    def __init__(self, status: int, code: str, detail: str, **opts: Unpack[ProblemOptions]) -> None:
        extra = dict(opts.get("extra") or {})
        if not _CODE_RE.match(code):
            raise ValueError(f"problem code must be snake_case: {code!r}")
        if clash := _RESERVED & extra.keys():
            raise ValueError(f"extension members clash with standard members: {sorted(clash)}")
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.title: str = opts.get("title") or _phrase(status)
        self.detail = detail
        self.detail_zh = opts.get("detail_zh")
        errors = opts.get("errors")
        self.errors: list[FieldError] | None = None if errors is None else list(errors)
        headers = opts.get("headers")
        self.headers: dict[str, str] | None = dict(headers) if headers else None
        self.extra: dict[str, Any] = extra

    @property
    def type(self) -> str:
        return PROBLEM_TYPE_BASE + self.code


class _StatusProblem(Problem):
    status_code: ClassVar[int] = 500

    def __init__(self, code: str, detail: str, **opts: Unpack[ProblemOptions]) -> None:
        super().__init__(self.status_code, code, detail, **opts)


class BadRequest(_StatusProblem):
    status_code = 400


class Forbidden(_StatusProblem):
    status_code = 403


class NotFound(_StatusProblem):
    status_code = 404


class Conflict(_StatusProblem):
    status_code = 409


class PreconditionFailed(_StatusProblem):
    status_code = 412


class Unprocessable(_StatusProblem):
    status_code = 422


class PreconditionRequired(_StatusProblem):
    status_code = 428


def _with_header(opts: ProblemOptions, name: str, value: str) -> ProblemOptions:
    return {**opts, "headers": {**(opts.get("headers") or {}), name: value}}


class Unauthorized(_StatusProblem):
    """401 with ``WWW-Authenticate: Bearer`` (plus an RFC 6750 ``error`` when given)."""

    status_code = 401

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        bearer_error: str | None = None,
        **opts: Unpack[ProblemOptions],
    ) -> None:
        challenge = "Bearer" if bearer_error is None else f'Bearer error="{bearer_error}"'
        super().__init__(code, detail, **_with_header(opts, "WWW-Authenticate", challenge))


class TooManyRequests(_StatusProblem):
    """429; ``retry_after`` (seconds) becomes the ``Retry-After`` header."""

    status_code = 429

    def __init__(
        self, code: str, detail: str, *, retry_after: int = 1, **opts: Unpack[ProblemOptions]
    ) -> None:
        super().__init__(
            code, detail, **_with_header(opts, "Retry-After", str(max(0, retry_after)))
        )


class ServiceUnavailable(_StatusProblem):
    """503; an optional ``retry_after`` (seconds) becomes the ``Retry-After`` header."""

    status_code = 503

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        retry_after: int | None = None,
        **opts: Unpack[ProblemOptions],
    ) -> None:
        if retry_after is not None:
            opts = _with_header(opts, "Retry-After", str(max(0, retry_after)))
        super().__init__(code, detail, **opts)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _request_id(request: Request) -> str | None:
    rid = getattr(request.state, "request_id", None)
    if rid is None:
        rid = structlog.contextvars.get_contextvars().get("request_id")
    return None if rid is None else str(rid)


def problem_response(problem: Problem, request: Request) -> JSONResponse:
    """Render ``problem`` as an ``application/problem+json`` response."""
    body: dict[str, Any] = {
        "type": problem.type,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.url.path,
        "code": problem.code,
        "request_id": _request_id(request),
    }
    if problem.detail_zh is not None:
        body["detail_zh"] = problem.detail_zh
    if problem.errors is not None:
        body["errors"] = [e.model_dump() for e in problem.errors]
    body.update(problem.extra)
    return JSONResponse(
        body, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_MEDIA_TYPE
    )


def _field_errors(errors: Any) -> list[FieldError]:
    """Pydantic/FastAPI error dicts -> field errors, keeping only loc, msg and type."""
    out: list[FieldError] = []
    for err in errors:
        kind = str(err.get("type", "invalid"))
        loc = [str(part) for part in err.get("loc", ())]
        if kind == "json_invalid":  # loc is ("body", <char offset>)
            loc, msg = ["body"], "Malformed JSON body"
        else:
            msg = str(err.get("msg", ""))
        out.append(FieldError(field=".".join(loc), message=msg, type=kind))
    return out


DenialRecorder = Callable[[Request, Any, "Problem"], Awaitable[None]]


async def _handle_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    if exc.status >= 500:
        _log.warning("problem", code=exc.code, status=exc.status, path=request.url.path)
    if exc.status == 403:
        await _record_denial(request, exc)
    return problem_response(exc, request)


async def _record_denial(request: Request, problem: Problem) -> None:
    """A refused call of a verified caller goes to the audit log when the app keeps one
    (``app.state.record_denial``, set by the service runtime and the gateway)."""
    recorder: DenialRecorder | None = getattr(request.app.state, "record_denial", None)
    principal = getattr(request.state, "principal", None)
    if recorder is None or principal is None:
        return
    try:
        await recorder(request, principal, problem)
    except Exception as exc:  # the refusal stands; a failed audit write is logged
        _log.warning("denial_audit_failed", error=type(exc).__name__, path=request.url.path)


async def _handle_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc.errors())
    _log.info("request_invalid", path=request.url.path, fields=[e.field for e in errors])
    problem = Unprocessable(
        "validation_error",
        "The request is invalid; see errors for the fields to fix.",
        detail_zh="请求内容有误，请检查标注的字段。",
        errors=errors,
    )
    return problem_response(problem, request)


async def _handle_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = HTTPStatus(status).name.lower() if status in _KNOWN_STATUSES else f"http_{status}"
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else _phrase(status)
    problem = Problem(status, code, detail, headers=exc.headers)
    return problem_response(problem, request)


async def _handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ValidationError | ValidationException):
        # str(exc) and its traceback text carry the offending input (maybe PII): log shapes.
        tb = [f for f in traceback.extract_tb(exc.__traceback__) if "-packages" not in f.filename]
        _log.error(
            "unhandled_exception",
            exc_type=type(exc).__name__,
            origin=f"{tb[-1].filename}:{tb[-1].lineno}" if tb else None,
            errors=[(".".join(map(str, e.get("loc", ()))), e.get("type")) for e in exc.errors()],
            path=request.url.path,
        )
    else:
        _log.error("unhandled_exception", exc_info=exc, path=request.url.path)
    detail = "An unexpected error occurred. Please try again later."
    problem = Problem(500, "internal_error", detail, detail_zh="系统繁忙，请稍后再试。")
    return problem_response(problem, request)


class _UnhandledErrorMiddleware:
    """Turn exceptions escaping the routes into a 500 problem without re-raising.

    Starlette's ServerErrorMiddleware also re-raises after answering, which makes the
    server log the traceback (and ``str(exc)``) a second time; this answers inside the
    app so the one structlog line above is the only record.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            response = await _handle_unexpected(Request(scope, receive), exc)
            await response(scope, receive, send)


def install_problem_handlers(app: FastAPI) -> None:
    """Register the problem handlers (call once in the app factory, before startup)."""
    app.add_exception_handler(Problem, _handle_problem)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_exception_handler(StarletteHTTPException, _handle_http)
    app.add_exception_handler(Exception, _handle_unexpected)  # errors in outer middleware
    app.add_middleware(_UnhandledErrorMiddleware)
    _document_validation_problems(app)


_COMPONENTS = "#/components/schemas/"


def _document_validation_problems(app: FastAPI) -> None:
    """Make the OpenAPI document tell the truth about bad input.

    FastAPI documents a 422 ``HTTPValidationError`` (``application/json``) on every
    operation with inputs, but :func:`_handle_validation` answers with a problem
    (``application/problem+json``): rewrite those 422s to :class:`ProblemModel`.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _problem_422s(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _problem_422s(spec: dict[str, Any]) -> dict[str, Any]:
    default_422 = {"$ref": f"{_COMPONENTS}HTTPValidationError"}
    problem_422 = {
        "description": _phrase(422),
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": _COMPONENTS + ProblemModel.__name__}}},
    }
    rewritten = False
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            responses = operation.get("responses", {}) if isinstance(operation, dict) else {}
            documented = responses.get("422", {}).get("content", {})
            if documented.get("application/json", {}).get("schema") == default_422:
                responses["422"] = problem_422
                rewritten = True
    if rewritten:
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        _, defs = models_json_schema(
            [(ProblemModel, "serialization")], ref_template=_COMPONENTS + "{model}"
        )
        for name, schema in defs.get("$defs", {}).items():
            schemas.setdefault(name, schema)
        if default_422["$ref"] not in json.dumps(spec.get("paths", {})):
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
    return spec


def problem_responses_doc(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries documenting problem bodies: ``problem_responses_doc(404, 409)``."""
    ref = {"$ref": f"#/components/schemas/{ProblemModel.__name__}"}
    return {
        status: {
            "model": ProblemModel,
            "description": _phrase(status),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": ref}},
        }
        for status in statuses
    }
