"""The console's browser tests: Playwright for Python driving Debian's headless Chromium
against the whole system (tests/e2e/conftest.py), with demo data seeded through the API.

Each test module seeds its own small alliance (``devstack.demo``), so modules never share a
patient, a slot or a referral. Screenshots of each screen land in
``.data/test-artifacts/console/`` (CARELOOP_TEST_ARTIFACTS), and axe-core checks each one.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from devstack.demo import Demo, seed
from devstack.keys import DevSecrets
from devstack.system import System

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = os.environ.get("CARELOOP_CHROMIUM", "/usr/bin/chromium")
CJK_FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
# as the machine's own probe starts it: no sandbox (root), no calls to Google's hosts
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def artifacts_dir() -> Path:
    base = Path(os.environ.get("CARELOOP_TEST_ARTIFACTS", ROOT / ".data" / "test-artifacts"))
    path = base / "console"
    path.mkdir(parents=True, exist_ok=True)
    return path


# Debian's packages the browser tests need: the browser and a font with Chinese glyphs
PACKAGES = {"chromium": Path(CHROMIUM), "fonts-wqy-microhei": Path(CJK_FONT)}


def ensure_chromium() -> str:
    """Debian's Chromium and a Chinese font, installed once (as root, one worker at a time)
    when missing."""
    if all(path.exists() for path in PACKAGES.values()):
        return CHROMIUM
    lock_path = Path("/tmp/careloop-chromium.lock")  # noqa: S108 - one machine-wide lock
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = [name for name, path in PACKAGES.items() if not path.exists()]
        if missing:
            apt = shutil.which("apt-get")
            if apt is None or os.geteuid() != 0:
                raise RuntimeError(f"install Debian's packages {missing} for the browser tests")
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            subprocess.run([apt, "update", "-qq"], check=True, env=env)
            subprocess.run([apt, "install", "-y", "-qq", *missing], check=True, env=env)
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    path = ensure_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="module")
async def demo(request: pytest.FixtureRequest, system: System, dev_secrets: DevSecrets) -> Demo:
    """A fresh demo alliance for the module, with the parts its ``DEMO_PARTS`` names (the
    base alone when it names none): seeding is most of a browser test's time."""
    site = "cx" + secrets.token_hex(3)
    parts = getattr(request.module, "DEMO_PARTS", ())
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as gw:
        return await seed(gw, dev_secrets, site, parts)


@pytest.fixture
async def page(browser: Browser, system: System) -> AsyncIterator[Page]:
    context = await browser.new_context(
        base_url=system.gateway_url, viewport={"width": 1366, "height": 768}, locale="zh-CN"
    )
    context.set_default_timeout(15_000)
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        await context.close()
    assert not errors, f"the page threw: {errors}"
