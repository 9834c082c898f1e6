"""A lean HTTP/1.1 client for load tests: one connection per request, nothing pooled.

httpx slows down badly with thousands of requests in flight in one process; a surge test
needs the load generator to be cheaper than the server it loads.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class RawResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names

    def json(self) -> Any:
        return json.loads(self.body)


async def post_json(
    base: str,
    path: str,
    payload: Any,
    headers: dict[str, str],
    timeout: float = 60.0,
    *,
    source: str | None = None,
) -> RawResponse:
    """POST ``payload`` as JSON; ``source``: the local address to send from (127.x.y.z)."""
    return await request(
        "POST", base, path, headers, json.dumps(payload).encode(), timeout, source=source
    )


async def get_json(
    base: str,
    path: str,
    headers: dict[str, str],
    timeout: float = 60.0,
    *,
    source: str | None = None,
) -> RawResponse:
    return await request("GET", base, path, headers, None, timeout, source=source)


async def request(
    method: str,
    base: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    timeout: float = 60.0,
    *,
    source: str | None = None,
) -> RawResponse:
    url = urlsplit(base)
    head = [f"{method} {path} HTTP/1.1", f"Host: {url.netloc}", "Connection: close"]
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    local = (source, 0) if source else None
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(url.hostname, url.port, local_addr=local), timeout
    )
    try:
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + (body or b""))
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    header, _, content = raw.partition(b"\r\n\r\n")
    status_line, *lines = header.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    fields = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
    if fields.get("transfer-encoding") == "chunked":
        content = _dechunk(content)
    return RawResponse(status, content, fields)


async def final_booking_answer(
    base: str,
    first: RawResponse,
    headers: dict[str, str],
    *,
    source: str | None = None,
    deadline: float = 60.0,
) -> tuple[str, RawResponse | dict[str, Any]]:
    """Follow a booking answer to its end: ``(outcome, detail)`` with outcome ``booked``,
    a problem code, or a ticket's final status (``sold_out``, ``failed``, ``expired``).
    A ``202`` is polled at its ticket's ``poll_url`` until the ticket has its answer."""
    if first.status == 201:
        return "booked", first
    if first.status != 202:
        code = first.json().get("code", str(first.status)) if first.body else str(first.status)
        return str(code), first
    poll = first.json()["ticket"]["poll_url"]
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline
    while loop.time() < until:
        await asyncio.sleep(1.0)
        seen = await get_json(base, poll, headers, source=source)
        if seen.status == 429 or seen.status >= 500:  # asked again, as the app does
            continue
        state = seen.json()
        if state.get("status") not in ("queued", "serving"):
            return str(state["status"]), state
    return "unanswered", {}


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)
