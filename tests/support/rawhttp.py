"""A lean HTTP/1.1 client for load tests: one connection per request, nothing pooled.

httpx slows down badly with thousands of requests in flight in one process; a surge test
needs the load generator to be cheaper than the server it loads.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class RawResponse:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def post_json(
    base: str, path: str, payload: Any, headers: dict[str, str], timeout: float = 60.0
) -> RawResponse:
    url = urlsplit(base)
    body = json.dumps(payload).encode()
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: {url.netloc}",
        "Connection: close",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(url.hostname, url.port), timeout
    )
    try:
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    header, _, content = raw.partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in header.lower():
        content = _dechunk(content)
    return RawResponse(status, content)


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
