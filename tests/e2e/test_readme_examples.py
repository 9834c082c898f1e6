"""The README's examples, run as they stand against the running system.

Every ``bash`` block of README.md runs in page order as one script, from a folder laid
out like a checkout after ``make up`` (``.venv``, ``.data/keys``), with ``GW`` pointing at
the test system's gateway. Each ``curl`` answer is checked against the status written
under it (a 2xx where none is written); see tests/support/readme_script.py.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from devstack.keys import DevSecrets
from devstack.system import System
from tests.support.readme_script import script

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_every_readme_example_answers_as_the_readme_says(
    system: System, dev_secrets: DevSecrets, tmp_path: Path
) -> None:
    text, checked = script((ROOT / "README.md").read_text())
    assert checked >= 30  # the page's examples, not a stub
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / ".venv").symlink_to(ROOT / ".venv")
    state_dir = dev_secrets.jwt_private_key_file.parent.parent
    (checkout / ".data").symlink_to(state_dir)
    failures = tmp_path / "failures"
    failures.touch()
    env = {
        **os.environ,
        "GW": system.gateway_url,
        "MLLP": f"127.0.0.1:{system.mllp_port}",
        "CARELOOP_STATE_DIR": str(state_dir),
        "PYTHONPATH": str(ROOT),
        "README_FAILURES": str(failures),
    }
    run = subprocess.run(
        ["bash", "-c", text],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    calls = Path(f"{failures}.log").read_text().splitlines()
    detail = f"{failures.read_text()}\nstderr:\n{run.stderr[-3000:]}"
    assert run.returncode == 0, detail
    assert failures.read_text() == "", detail
    assert len(calls) >= checked  # every checked call ran (none skipped by an early exit)
