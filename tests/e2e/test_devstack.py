"""``make up`` as an operator meets it: replicas on one port, a taken port refused, and no
process left behind when it is killed hard (SIGKILL)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from devstack.processes import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def descendants(pid: int) -> set[int]:
    """Every live process under ``pid`` (children, grandchildren...), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped is dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pids: set[int], timeout: float = 5.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.1)
    return {pid for pid in pids if alive(pid)}


@pytest.mark.timeout(60)
@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_children_die_with_a_supervisor_killed_hard(tmp_path: Path) -> None:
    supervisor = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from devstack.processes import ManagedProcess
        procs = [
            ManagedProcess(
                name=f"sleeper{{n}}",
                argv=[sys.executable, "-c", "import time; time.sleep(120)"],
                port=0,
                log_path=Path({str(tmp_path)!r}) / f"sleeper{{n}}.log",
            ).start(wait=False)
            for n in range(3)
        ]
        print(" ".join(str(p.proc.pid) for p in procs), flush=True)
        time.sleep(120)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", supervisor], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        pids = {int(pid) for pid in parent.stdout.readline().split()}
        assert len(pids) == 3
        assert all(alive(pid) for pid in pids)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=5)
        assert wait_gone(pids) == set(), "children outlived their supervisor"
    finally:
        parent.kill()


def up_env(tmp_path: Path, **ports: int) -> dict[str, str]:
    env = {**os.environ, "CARELOOP_STATE_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    for name in ("gateway", "appointments", "referrals", "notifications", "followup"):
        env[f"CARELOOP_{name.upper()}_PORT"] = str(ports.get(name) or free_port())
    for name in ("kafka", "mongo", "redis"):
        env[f"CARELOOP_{name.upper()}_PORT"] = str(ports.get(name) or free_port())
    return env


def test_make_up_refuses_a_taken_port_and_starts_nothing(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "devstack.up"],
            cwd=ROOT,
            env=up_env(tmp_path, gateway=port),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"port {port} (gateway) is already in use" in done.stderr
    assert f"CARELOOP_GATEWAY_PORT={port + 1} make up" in done.stderr
    assert "starting" not in done.stdout  # refused before anything started
    assert not (tmp_path / "logs").exists()


@pytest.mark.timeout(120)
@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_make_up_runs_replicas_and_leaves_nothing_when_killed_hard(tmp_path: Path) -> None:
    gateway = free_port()
    env = up_env(tmp_path, gateway=gateway)
    env |= {"CARELOOP_GATEWAY_WORKERS": "2", "CARELOOP_APPOINTMENTS_WORKERS": "2"}
    up = subprocess.Popen(
        [sys.executable, "-m", "devstack.up"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert up.stdout is not None
        lines = []
        for line in up.stdout:  # until the banner (or the end, if it failed)
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        assert "CareLoop is up." in "".join(lines), "".join(lines)
        ready = httpx.get(f"http://127.0.0.1:{gateway}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        for name in ("gateway", "appointments"):  # each replica answers on its own port
            own = replica_urls("".join(lines), name)
            assert len(own) == 2, "".join(lines)
            for url in own:
                answer = httpx.get(url, timeout=5)
                assert answer.status_code == 200, answer.text
                assert answer.json()["service"] == name

        children = descendants(up.pid)
        # Tansu, SecantusDB, Redis, 3 services, 2 appointments and 2 gateway replicas
        assert len(children) >= 10, children
        up.send_signal(signal.SIGKILL)
        up.wait(timeout=5)
        assert wait_gone(children) == set(), "make up's processes outlived it"
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{gateway}/healthz", timeout=2)
    finally:
        up.kill()


def replica_urls(banner: str, name: str) -> list[str]:
    """The replicas' own readiness URLs that make up prints for ``name``."""
    for line in banner.splitlines():
        if line.split()[:1] == [name] and "own readiness" in line:
            return re.findall(r"http://\S+/readyz", line)
    return []
