"""Forward ``/v1/<service>/...`` to the owning service over a pooled HTTP client.

* Headers go upstream as the raw bytes they arrived in (a Chinese ``X-Access-Reason``, a
  Latin-1 custom header), less the hop-by-hop ones; answers come back the same way, less
  the upstream's ``Date`` and ``Server`` (the gateway's server sends its own).
* Server-sent event streams (a ``text/event-stream`` answer) flow through chunk by chunk
  and may stay silent up to ``stream_idle_timeout`` between chunks (the service's
  heartbeats keep them well inside it); a request that ``Accept``s an event stream waits
  that long for its answer too. A stream whose upstream fails or falls silent ends, as a
  stream, cleanly: its client reconnects with ``Last-Event-ID``.
* Every other answer is read whole first (they are JSON pages of bounded size), within
  ``timeout``, so an upstream that breaks off mid-answer becomes a 502 problem instead of a
  truncated body that looks complete.
* Only idempotent methods are retried, and only when no answer could have been produced
  (no connection, or the connection was closed before anything came back); a POST or a
  PATCH goes upstream at most once. A service that cannot be reached gets a fast 503
  problem, one that does not answer in time a 503 ``upstream_timeout``, one that breaks the
  exchange (a reset, a connection closed mid-request, mid-headers or mid-body, an answer
  that is not HTTP) a 502: every transport failure is one of these, whatever raised it
  (httpx, or an httpcore, anyio, h11 or socket error leaking through it), and an error
  while closing an upstream answer is logged, never answered.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from urllib.parse import quote_from_bytes

import httpx
import structlog
from fastapi import Request
from starlette.responses import Response, StreamingResponse

from services.gateway.refusals import overloaded
from shared.problems import BadRequest, NotFound, Problem, ServiceUnavailable

log = structlog.get_logger(__name__)

LANE_HEADER = b"x-careloop-lane"  # a booking let through in the slow lane: queue it last
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
        b"x-request-id",
        b"x-careloop-internal",  # the gateway's in-process calls (audit_view.INTERNAL_HEADER)
        LANE_HEADER,
    }
)
# set by the gateway's own server: an upstream's copy would make a second one
NOT_PASSED_BACK = HOP_BY_HOP | {b"date", b"server"}
EVENT_STREAM = b"text/event-stream"
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"  # RFC 3986 pchar and "/"; "%" keeps escapes as they came
_QUERY_SAFE = _PATH_SAFE + "?"
RawHeaders = list[tuple[bytes, bytes]]
# RFC 9110 field-value as h11 sends it: visible bytes or obs-text, single spaces/tabs inside
_FIELD_VALUE = re.compile(rb"([^\x00\s]+([ \t]+[^\x00\s]+)*)?")


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


def _without(raw: RawHeaders, dropped: frozenset[bytes]) -> RawHeaders:
    """``raw`` less ``dropped`` and the headers its ``Connection`` header names (RFC 9110)."""
    named = {
        token.strip().lower()
        for name, value in raw
        if name.lower() == b"connection"
        for token in value.split(b",")
    }
    return [(n, v) for n, v in raw if n.lower() not in dropped and n.lower() not in named]


def request_headers(request: Request) -> RawHeaders:
    """What the service gets: the client's headers byte for byte, our request id, its address.
    A value HTTP/1.1 cannot carry on (a vertical tab, a form feed) is a 400 naming it."""
    headers = _without(list(request.headers.raw), HOP_BY_HOP)
    for name, value in headers:
        if not _FIELD_VALUE.fullmatch(value):
            shown = name.decode("latin-1")
            raise BadRequest(
                "header_invalid",
                f"the {shown} header holds characters that cannot be forwarded",
                extra={"header": shown},
            )
    headers.append((b"x-request-id", str(request.state.request_id).encode("ascii")))
    if getattr(request.state, "slow_lane", False):  # the gateway's word, never the client's
        headers.append((LANE_HEADER, b"slow"))
    if request.client:
        headers.append((b"x-forwarded-for", request.client.host.encode("ascii", "replace")))
    return headers


def accepts_event_stream(request: Request) -> bool:
    return any(
        name == b"accept" and EVENT_STREAM in value.lower() for name, value in request.headers.raw
    )


def is_event_stream(response: httpx.Response) -> bool:
    return any(
        name.lower() == b"content-type" and value.lower().startswith(EVENT_STREAM)
        for name, value in response.headers.raw
    )


def bad_gateway(service: str, what: str) -> Problem:
    return Problem(
        502,
        "upstream_failed",
        f"the {service} service {what}",
        detail_zh="服务暂时异常，请稍后再试",
        headers={"Retry-After": "2"},
    )


def _unreachable(service: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        "service_unavailable",
        f"the {service} service cannot be reached",
        detail_zh="服务暂时不可用，请稍后再试",
        retry_after=2,
    )


def _timed_out(service: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        "upstream_timeout",
        f"the {service} service did not answer in time",
        detail_zh="服务响应超时，请稍后再试",
        retry_after=2,
    )


class UpstreamProxy:
    """``timeout``: for an answer and for reading it whole; ``stream_idle_timeout``: the
    longest silence of an event stream (``None``: no limit); ``connect_timeout``: per try."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        service_urls: dict[str, str],
        retries: int,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 1.0,
        pool_timeout: float = 1.0,
        stream_idle_timeout: float | None = 60.0,
        max_response_bytes: int = 32 * 1024 * 1024,
        max_in_flight: int = 32,
    ) -> None:
        self.client = client
        self.service_urls = service_urls
        self.retries = retries
        self.timeout = timeout
        self.stream_idle_timeout = stream_idle_timeout
        self.max_response_bytes = max_response_bytes
        # our own deadlines bound the waits (below); httpx only bounds connecting and sending
        # a request that finds every connection busy for ``pool_timeout`` was never sent:
        # the gateway is at capacity, and says so with a 429 (``overloaded``)
        self._io = httpx.Timeout(timeout, connect=connect_timeout, read=None, pool=pool_timeout)
        # at most ``max_in_flight`` exchanges (event streams aside) are handed to the HTTP
        # client at once; the rest wait here, in order and cheaply (httpcore's own queue is
        # scanned against every connection for every request), for ``pool_timeout``
        self.pool_timeout = pool_timeout
        self._in_flight = asyncio.Semaphore(max_in_flight)

    async def forward(self, request: Request, service: str) -> Response:
        if accepts_event_stream(request):
            return await self._forward(request, service)
        try:
            async with asyncio.timeout(self.pool_timeout):
                await self._in_flight.acquire()
        except TimeoutError as exc:  # nothing was sent: at capacity, retry shortly
            log.info("gateway.upstream_busy", service=service)
            raise overloaded(1) from exc
        try:
            return await self._forward(request, service)
        finally:
            self._in_flight.release()

    async def _forward(self, request: Request, service: str) -> Response:
        base = self.service_urls.get(service)
        if base is None:
            raise NotFound("unknown_service", f"no service is called {service!r}")
        upstream = upstream_url(base, request)
        body = await request.body()
        wait = self.stream_idle_timeout if accepts_event_stream(request) else self.timeout
        outgoing = self.client.build_request(
            request.method,
            upstream,
            headers=request_headers(request),
            content=body,
            timeout=self._io,
        )
        response = await self._send(outgoing, service, wait)
        out_headers = _without(list(response.headers.raw), NOT_PASSED_BACK)
        if is_event_stream(response):
            streamed = StreamingResponse(self._relay(response, service), response.status_code)
            streamed.raw_headers = [*streamed.raw_headers, *out_headers]
            return streamed
        content = await self._read_whole(response, service)
        answer = Response(content, response.status_code)
        if request.method == "HEAD":  # no body: the length is the one a GET would have
            answer.raw_headers = [h for h in answer.raw_headers if h[0] != b"content-length"]
            out_headers += [h for h in response.headers.raw if h[0].lower() == b"content-length"]
        answer.raw_headers = [*answer.raw_headers, *out_headers]
        return answer

    async def _send(
        self, outgoing: httpx.Request, service: str, wait: float | None
    ) -> httpx.Response:
        attempts = 1 + (self.retries if outgoing.method in IDEMPOTENT else 0)
        for attempt in range(1, attempts + 1):
            try:
                async with asyncio.timeout(wait):
                    return await self.client.send(outgoing, stream=True)
            except httpx.PoolTimeout as exc:  # nothing was sent: at capacity, retry shortly
                log.info("gateway.upstream_busy", service=service)
                raise overloaded(1) from exc
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
                # RemoteProtocolError here: closed before any answer (e.g. a stale keep-alive)
                if attempt == attempts:
                    log.warning("gateway.upstream_down", service=service, error=type(exc).__name__)
                    if isinstance(exc, httpx.RemoteProtocolError):
                        raise bad_gateway(service, "closed the connection unanswered") from exc
                    raise _unreachable(service) from exc
                await asyncio.sleep(0.05 * attempt)
            except (TimeoutError, httpx.TimeoutException) as exc:
                log.warning("gateway.upstream_timeout", service=service, error=type(exc).__name__)
                raise _timed_out(service) from exc
            except Problem:
                raise
            except Exception as exc:  # any other transport failure is a 502
                # httpx.HTTPError (a write or read broke off, a bad answer), or an httpcore,
                # anyio, h11 or OSError that got past httpx's own mapping
                log.warning("gateway.upstream_failed", service=service, error=type(exc).__name__)
                raise bad_gateway(service, "broke off the exchange") from exc
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _read_whole(self, response: httpx.Response, service: str) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.timeout):
                async for chunk in response.aiter_raw():
                    size += len(chunk)
                    if size > self.max_response_bytes:
                        log.warning("gateway.upstream_too_large", service=service, size=size)
                        raise bad_gateway(service, "answered more than the gateway passes on")
                    chunks.append(chunk)
        except (TimeoutError, httpx.TimeoutException) as exc:
            log.warning("gateway.upstream_timeout", service=service, error=type(exc).__name__)
            raise _timed_out(service) from exc
        except Problem:
            raise
        except Exception as exc:  # httpx, httpcore, anyio, h11, OSError alike
            log.warning("gateway.upstream_failed", service=service, error=type(exc).__name__)
            raise bad_gateway(service, "broke off its answer") from exc
        finally:
            await _close(response, service)
        return b"".join(chunks)

    async def _relay(self, response: httpx.Response, service: str) -> AsyncIterator[bytes]:
        """The stream's chunks; an upstream failure or silence ends it without an error."""
        chunks = response.aiter_raw()
        try:
            while True:
                try:
                    async with asyncio.timeout(self.stream_idle_timeout):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    return
                yield chunk
        except Exception as exc:  # silence, or any transport failure
            log.info("gateway.stream_ended", service=service, reason=type(exc).__name__)
        finally:
            await _close(response, service)


async def _close(response: httpx.Response, service: str) -> None:
    """Close an upstream answer; a connection that breaks while closing is only logged."""
    try:
        await response.aclose()
    except Exception as exc:  # the answer is decided already
        log.info("gateway.upstream_close_failed", service=service, error=type(exc).__name__)
