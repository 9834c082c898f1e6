"""Start and stop local server processes (broker, database, cache, services).

Every child is bound to its parent's life: on Linux it gets ``PR_SET_PDEATHSIG`` (SIGKILL),
so a parent killed hard (SIGKILL, a crash) takes its servers with it and leaves no orphan
holding a port. A port that something else already listens on is refused up front
(:class:`PortTaken`) rather than silently talked to.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class PortTaken(RuntimeError):
    """A port this system needs is already in use; the message says which and what to do."""

    def __init__(self, port: int, role: str, hint: str = "") -> None:
        self.port, self.role = port, role
        super().__init__(
            f"port {port} ({role}) is already in use on 127.0.0.1: another process listens "
            f"there, perhaps servers left by an earlier run. Find it with "
            f"`ss -ltnp 'sport = :{port}'` and stop it" + (f", or {hint}" if hint else "") + "."
        )


def listen_socket(port: int, role: str, *, hint: str = "", backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on 127.0.0.1:``port``, to hand to child processes.

    Raises :class:`PortTaken` when something listens there already (SO_REUSEADDR only lets
    us past connections lingering in TIME_WAIT, never past a live listener)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortTaken(port, role, hint) from exc
        raise
    sock.listen(backlog)
    return sock


def refuse_taken_ports(ports: Iterable[tuple[int, str, str]]) -> None:
    """Raise :class:`PortTaken` for the first of ``(port, role, hint)`` already in use."""
    for port, role, hint in ports:
        listen_socket(port, role, hint=hint, backlog=1).close()


def _parent_death_signal(parent_pid: int) -> Callable[[], None]:
    """A ``preexec_fn`` that makes the child die (SIGKILL) when its parent does (Linux).

    The kernel sends the signal when the *thread* that forked the child ends, so it is set
    only for children started from the main thread (which lives as long as the process)."""
    libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None

    def preexec() -> None:
        if libc is None:
            return
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def wait_for_port(
    port: int,
    *,
    timeout: float = 30.0,
    proc: subprocess.Popen[bytes] | None = None,
    name: str = "process",
    log: Path | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{name} exited with {proc.returncode} before listening:\n{tail}")
        time.sleep(0.05)
    raise TimeoutError(f"{name} did not listen on port {port} within {timeout}s")


@dataclass
class ManagedProcess:
    """A child process with its own log file, started in its own process group."""

    name: str
    argv: list[str]
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    pass_fds: tuple[int, ...] = ()  # listening sockets handed down (replicas of one port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self, *, wait: bool = True, timeout: float = 30.0) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
            cwd=self.cwd,
            start_new_session=True,
            pass_fds=self.pass_fds,
            preexec_fn=(
                _parent_death_signal(os.getpid())
                if threading.current_thread() is threading.main_thread()
                else None
            ),
        )
        log.close()
        if wait:
            wait_for_port(
                self.port, timeout=timeout, proc=self.proc, name=self.name, log=self.log_path
            )
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL what is left after ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL: a crash, for tests of what survives one."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
