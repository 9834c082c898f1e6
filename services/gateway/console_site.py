"""The ops console's web page, served at ``/console`` (docs/adr/0009-ops-console.md).

The page is a small app built with Vite (``services/gateway/console``); its built assets
are committed in ``console/dist`` and served here as files: no CDN, no Node.js at run time.
The page calls the same ``/v1`` APIs as every client, with the staff member's token.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response

from shared.problems import NotFound

DIST = Path(__file__).resolve().parent / "console" / "dist"
# scripts and styles from this origin only; Chart.js sizes its canvases with inline styles
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {"content-security-policy": CONSOLE_CSP, "cache-control": "no-store"}
# hashed file names: a new build has new names, so an asset may be kept for a year
ASSET_HEADERS = {
    "content-security-policy": CONSOLE_CSP,
    "cache-control": "public, max-age=31536000, immutable",
}


def console_router(dist: Path = DIST) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    assets = dist / "assets"

    @router.get("/console")
    async def console_root() -> Response:
        return RedirectResponse("/console/", status_code=308)

    @router.get("/console/")
    async def console_page() -> Response:
        index = dist / "index.html"
        if not index.is_file():
            raise NotFound("console_not_built", "the console is not built: run make console")
        return FileResponse(index, media_type="text/html", headers=PAGE_HEADERS)

    @router.get("/console/assets/{name}")
    async def console_asset(name: str) -> Response:
        # only a file of the build itself: no path leaves the assets folder
        known = {p.name for p in assets.iterdir()} if assets.is_dir() else set()
        if name not in known:
            raise NotFound("asset_not_found", "no such console asset")
        return FileResponse(assets / name, headers=ASSET_HEADERS)

    return router
