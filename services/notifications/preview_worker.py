"""Rendering staff's templates (previews, drafts being published) in worker processes.

A template is code: a nested loop or a huge string in a draft would hold the event loop of
the whole service. :class:`TemplateSandbox` renders them in worker processes
(``python -m services.notifications.preview_worker``, started on first use), at most
``concurrency`` at once; more wait their turn. A worker gets ``timeout`` seconds per
render: one still busy then is killed (SIGKILL) and replaced by a fresh one on the next
render, and the caller gets :class:`~services.notifications.rendering.TemplateTooSlow`.
Output is cut off at ``max_output`` bytes per part
(:class:`~services.notifications.rendering.OutputTooLarge`); a worker caps its own memory
(``RLIMIT_AS``) and, per render, its CPU time (``RLIMIT_CPU``: a worker orphaned in a loop
cannot spin for ever) and exits when its stdin closes.

Requests go to the worker as length-prefixed pickles (the service's own data); answers
come back as one JSON line (the worker runs untrusted templates: the service never
unpickles what it says).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import pickle
import resource
import struct
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import structlog

from services.notifications.message_kinds import ChannelTemplate
from services.notifications.providers.base import Rendered
from services.notifications.rendering import (
    OutputTooLarge,
    RenderError,
    TemplateTooSlow,
    render,
)

log = structlog.get_logger(__name__)

READY = b"ready\n"
START_TIMEOUT = 60.0  # seconds for a worker to import the renderer (not a render's budget)
MEMORY_HEADROOM = 512 * 1024 * 1024  # bytes of address space a render may add
MAX_ANSWER = 4 * 1024 * 1024  # bytes of one answer line
_HEADER = struct.Struct(">I")


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def kill(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()


class TemplateSandbox:
    def __init__(self, *, timeout: float, max_output: int, concurrency: int) -> None:
        self.timeout = timeout
        self.max_output = max_output
        self._slots = asyncio.Semaphore(concurrency)
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._replacements: set[asyncio.Task[None]] = set()

    async def render(self, template: ChannelTemplate, context: Mapping[str, Any]) -> Rendered:
        """Render in a worker; :class:`RenderError` (or a subclass) if that fails."""
        request = pickle.dumps(
            (template.to_mapping(), dict(context), self.max_output, self.timeout)
        )
        async with self._slots:
            worker = self._idle.pop() if self._idle else await self._start()
            try:
                answer = await self._ask(worker, request)
            except BaseException as exc:
                await self._discard(worker)
                if isinstance(exc, TemplateTooSlow):
                    self._replace()
                raise
            self._idle.append(worker)
        return _rendered(answer)

    def _replace(self) -> None:
        """Start a worker for the one just killed, so the next render need not wait."""

        async def start() -> None:
            try:
                self._idle.append(await self._start())
            except Exception as exc:  # the next render starts one itself
                log.warning("template.worker_start_failed", error=type(exc).__name__)

        task = asyncio.create_task(start())
        self._replacements.add(task)
        task.add_done_callback(self._replacements.discard)

    async def aclose(self) -> None:
        """Stop every worker (the service is stopping)."""
        for task in list(self._replacements):
            task.cancel()
        for worker in list(self._all):
            await self._discard(worker)

    async def _start(self) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.notifications.preview_worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=MAX_ANSWER,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(_python_path())},
        )
        worker = _Worker(process)
        self._all.add(worker)
        assert process.stdout is not None
        try:
            ready = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)
        except BaseException:
            await self._discard(worker)
            raise
        if ready != READY:
            await self._discard(worker)
            raise RenderError("the template renderer did not start")
        log.info("template.worker_started", pid=process.pid)
        return worker

    async def _ask(self, worker: _Worker, request: bytes) -> dict[str, Any]:
        stdin, stdout = worker.process.stdin, worker.process.stdout
        assert stdin is not None
        assert stdout is not None
        stdin.write(_HEADER.pack(len(request)) + request)
        try:
            await stdin.drain()
            line = await asyncio.wait_for(stdout.readline(), self.timeout)
        except TimeoutError as exc:
            log.warning("template.render_too_slow", timeout_seconds=self.timeout)
            raise TemplateTooSlow(f"rendering took longer than {self.timeout:g} s") from exc
        except (ConnectionError, ValueError) as exc:  # a pipe closed, an over-long line
            raise OutputTooLarge("the renderer ran out of resources") from exc
        if not line:  # the worker died (out of memory, CPU limit, killed)
            raise OutputTooLarge("the renderer ran out of resources")
        answer = json.loads(line)
        if not isinstance(answer, dict):
            raise RenderError("the template renderer gave no answer")
        return answer

    async def _discard(self, worker: _Worker) -> None:
        worker.kill()
        self._all.discard(worker)
        with contextlib.suppress(ValueError):
            self._idle.remove(worker)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(worker.process.wait(), 5)


def _python_path() -> list[str]:
    """This project's root first (the worker imports ``services``), then the caller's path."""
    root = str(Path(__file__).resolve().parents[2])
    return [root, *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]


def _rendered(answer: dict[str, Any]) -> Rendered:
    outcome, value = answer.get("outcome"), answer.get("value")
    if outcome == "ok" and isinstance(value, dict):
        return Rendered(
            title=str(value.get("title", "")),
            body=str(value.get("body", "")),
            fields={str(k): str(v) for k, v in dict(value.get("fields") or {}).items()},
            page=None if value.get("page") is None else str(value["page"]),
        )
    message = str(value)
    if outcome == "too_large":
        raise OutputTooLarge(message)
    raise RenderError(message)


# --- the worker process ------------------------------------------------------------------


def render_one(template: dict[str, Any], context: dict[str, Any], max_output: int) -> Any:
    """One render as the worker answers it: ``{"outcome": ..., "value": ...}``."""
    try:
        rendered = render(ChannelTemplate.from_mapping(template), context, max_output)
    except OutputTooLarge as exc:
        return {"outcome": "too_large", "value": str(exc)}
    except RenderError as exc:
        return {"outcome": "error", "value": str(exc)}
    except MemoryError:
        return {"outcome": "too_large", "value": "the template needs too much memory"}
    except Exception as exc:  # anything else a template provokes is its error
        return {"outcome": "error", "value": f"{type(exc).__name__}: {exc}"}
    value = {
        "title": rendered.title,
        "body": rendered.body,
        "fields": rendered.fields,
        "page": rendered.page,
    }
    return {"outcome": "ok", "value": value}


def _cap_memory() -> None:
    try:
        with open("/proc/self/statm") as statm:
            size = int(statm.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return  # no /proc: no memory cap (the time limit still holds)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = size + MEMORY_HEADROOM
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _cap_cpu(seconds: float) -> None:
    """Let this render use ``seconds`` more CPU time (SIGXCPU ends the worker after)."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(used.ru_utime + used.ru_stime + seconds) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def main() -> None:
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers on the answer pipe
    _cap_memory()
    answers.write(READY)
    answers.flush()
    while (header := _read_exactly(requests, _HEADER.size)) is not None:
        payload = _read_exactly(requests, _HEADER.unpack(header)[0])
        if payload is None:
            break
        template, context, max_output, timeout = pickle.loads(payload)  # noqa: S301 - ours
        _cap_cpu(timeout)
        answer = render_one(template, context, max_output)
        answers.write(json.dumps(answer, ensure_ascii=False).encode() + b"\n")
        answers.flush()


if __name__ == "__main__":
    main()
