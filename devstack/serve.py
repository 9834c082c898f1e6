"""One replica of a service on listening sockets handed down by its parent (``make up``).

    python -m devstack.serve gateway 3 4

runs ``python -m services.gateway`` unchanged (same app, settings, uvicorn options), except
that uvicorn serves the inherited sockets (file descriptors 3 and 4 here) instead of binding
its own port. The parent binds the service's public port once and gives it to every replica:
the kernel hands each new connection to one of them, so N replicas share a port the way
uvicorn's own ``--workers`` do, each a whole service process (its relay, consumers and timed
jobs included; they share the work through Kafka consumer groups and Mongo leases). A second
socket per replica, on a port of its own, lets the parent see that each one is ready.
"""

from __future__ import annotations

import contextlib
import runpy
import socket
import sys
from typing import Any

import uvicorn

STARTUP_FAILURE = 3  # uvicorn's exit code when the app did not start


def serve_on(sockets: list[socket.socket]) -> Any:
    """A stand-in for :func:`uvicorn.run` that serves ``sockets``, whatever host and port
    the service asks for; every other option is the service's own."""

    def run(app: Any, **options: Any) -> None:
        options.pop("host", None)
        options.pop("port", None)
        server = uvicorn.Server(uvicorn.Config(app, **options))
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=sockets)
        if not server.started:
            sys.exit(STARTUP_FAILURE)

    return run


def main(argv: list[str]) -> None:
    if len(argv) < 2 or not all(arg.isdigit() for arg in argv[1:]):
        raise SystemExit("usage: python -m devstack.serve <service> <fd> [<fd>...]")
    service, fds = argv[0], [int(arg) for arg in argv[1:]]
    sockets = [socket.socket(fileno=fd) for fd in fds]
    uvicorn.run = serve_on(sockets)  # shared.runner calls uvicorn.run at run time
    runpy.run_module(f"services.{service}", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
