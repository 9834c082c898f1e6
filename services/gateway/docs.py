"""One OpenAPI document for the whole API, merged from the services', with local docs pages."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import structlog

log = structlog.get_logger(__name__)


def merge_openapi(documents: dict[str, dict[str, Any]], *, title: str) -> dict[str, Any]:
    """Merge per-service OpenAPI documents; component names are prefixed to stay unique."""
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "0.1.0"},
        "paths": {},
        "components": {"schemas": {}},
        "tags": [],
    }
    for service, doc in sorted(documents.items()):
        renames = {
            name: f"{service}.{name}" for name in doc.get("components", {}).get("schemas", {})
        }
        doc = _rewrite_refs(doc, renames)
        for path, item in doc.get("paths", {}).items():
            if path in ("/healthz", "/readyz", "/metrics"):
                continue
            merged["paths"][path] = item
        for kind, members in doc.get("components", {}).items():
            if kind == "schemas":
                for name, schema in members.items():
                    merged["components"]["schemas"][renames.get(name, name)] = schema
                continue
            # other sections (securitySchemes) keep their names: operations name a security
            # scheme instead of $ref'ing it, and every service declares the same HTTPBearer
            section = merged["components"].setdefault(kind, {})
            for name, member in members.items():
                if section.setdefault(name, member) != member:
                    log.warning("gateway.openapi_component_clash", kind=kind, name=name)
        merged["tags"].append({"name": service})
    return merged


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    prefix = "#/components/schemas/"
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(prefix):
                name = value[len(prefix) :]
                out[key] = prefix + renames.get(name, name)
            elif key == "schemas" and isinstance(value, dict) and set(value) <= set(renames):
                out[key] = {k: _rewrite_refs(v, renames) for k, v in value.items()}
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, renames) for v in node]
    return node


async def fetch_openapi(
    client: httpx.AsyncClient, service_urls: dict[str, str]
) -> dict[str, dict[str, Any]]:
    async def one(name: str, base: str) -> tuple[str, dict[str, Any] | None]:
        try:
            response = await client.get(f"{base}/v1/{name}/openapi.json", timeout=3.0)
            response.raise_for_status()
            return name, response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("gateway.openapi_unavailable", service=name, error=str(exc))
            return name, None

    results = await asyncio.gather(*(one(n, u) for n, u in service_urls.items()))
    return {name: doc for name, doc in results if doc is not None}
