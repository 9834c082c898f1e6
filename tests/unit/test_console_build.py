"""The console's committed build (services/gateway/console/dist) is the build of its
sources: the hash stamp.mjs recorded after `vite build` matches the sources as they are."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
CONSOLE = Path(__file__).resolve().parents[2] / "services" / "gateway" / "console"
INPUTS = ["index.html", "package.json", "package-lock.json", "vite.config.js", "src"]


def source_hash() -> str:
    digest = hashlib.sha256()
    for name in INPUTS:
        path = CONSOLE / name
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        # by the relative path as text, as stamp.mjs sorts (not by Path parts)
        for file in sorted(files, key=lambda p: p.relative_to(CONSOLE).as_posix()):
            digest.update(file.relative_to(CONSOLE).as_posix().encode())
            digest.update(b"\0")
            digest.update(file.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


def test_the_committed_build_is_of_the_current_sources() -> None:
    recorded = (CONSOLE / "dist" / "SOURCE_HASH").read_text().strip()
    assert recorded == source_hash(), "the console's dist/ is stale: run `make console`"


def test_the_build_loads_nothing_from_another_origin() -> None:
    for file in (CONSOLE / "dist").rglob("*"):
        if file.suffix in {".html", ".css"}:
            text = file.read_text()
            assert "https://" not in text, file
            assert "http://" not in text, file
