"""Forward ``/v1/<service>/...`` to the owning service over a pooled HTTP client.

Responses stream through (server-sent events included). Only idempotent methods are
retried, and only when the connection could not be made. A service that cannot be
reached gets a fast 503 problem.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote_from_bytes

import httpx
import structlog
from fastapi import Request
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from shared.problems import BadRequest, NotFound, ServiceUnavailable

log = structlog.get_logger(__name__)

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "x-request-id",
    }
)
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"  # RFC 3986 pchar and "/"; "%" keeps escapes as they came
_QUERY_SAFE = _PATH_SAFE + "?"


def upstream_url(base: str, request: Request) -> httpx.URL:
    """The service's URL for ``request``: its path and query as received, still
    percent-encoded (an escaped ``/`` or control character stays inside its path segment),
    with any byte a URL may not hold escaped. A target that still makes no URL is a 400."""
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    target = quote_from_bytes(raw_path, safe=_PATH_SAFE)
    if query := request.scope.get("query_string", b""):
        target += "?" + quote_from_bytes(query, safe=_QUERY_SAFE)
    try:
        url = httpx.URL(base)
        return url.copy_with(raw_path=url.raw_path.rstrip(b"/") + target.encode("ascii"))
    except httpx.InvalidURL as exc:
        raise BadRequest("invalid_url", "the request's path or query is not a valid URL") from exc


class UpstreamProxy:
    def __init__(
        self, client: httpx.AsyncClient, service_urls: dict[str, str], retries: int
    ) -> None:
        self.client = client
        self.service_urls = service_urls
        self.retries = retries

    async def forward(self, request: Request, service: str) -> StreamingResponse:
        base = self.service_urls.get(service)
        if base is None:
            raise NotFound("unknown_service", f"no service is called {service!r}")
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
        headers.append(("x-request-id", request.state.request_id))
        if request.client:
            headers.append(("x-forwarded-for", request.client.host))
        body = await request.body()
        upstream = upstream_url(base, request)
        attempts = 1 + (self.retries if request.method in IDEMPOTENT else 0)
        for attempt in range(1, attempts + 1):
            outgoing = self.client.build_request(
                request.method, upstream, headers=headers, content=body
            )
            try:
                response = await self.client.send(outgoing, stream=True)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt == attempts:
                    log.warning("gateway.upstream_down", service=service, error=str(exc))
                    raise ServiceUnavailable(
                        "service_unavailable",
                        f"the {service} service cannot be reached",
                        detail_zh="服务暂时不可用，请稍后再试",
                        retry_after=2,
                    ) from exc
                await asyncio.sleep(0.05 * attempt)
            except httpx.TimeoutException as exc:
                raise ServiceUnavailable(
                    "upstream_timeout",
                    f"the {service} service did not answer in time",
                    detail_zh="服务响应超时，请稍后再试",
                    retry_after=2,
                ) from exc
        out_headers = {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP}
        return StreamingResponse(
            response.aiter_raw(),
            status_code=response.status_code,
            headers=out_headers,
            background=BackgroundTask(response.aclose),
        )
