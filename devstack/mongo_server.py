"""``python -m devstack.mongo_server [SecantusDB flags]``: the embedded MongoDB stand-in,
started as SecantusDB's own command line starts it, with one server parameter more.

``--transaction-lifetime SECONDS`` is mongod's ``transactionLifetimeLimitSeconds``: how
long a transaction left open (its process was killed) holds its writes before the server
aborts it. SecantusDB takes it as a constructor argument only; 60, as in mongod, unless
given. The test session uses a shorter one, so crash tests do not wait a minute.

SecantusDB reaps expired transactions only when another transaction statement runs; plain
writes that conflict with a dead transaction's writes retry inside the server and never
trigger it. Like mongod's periodic job that aborts expired transactions, a thread here reaps
them every second, so a killed process's writes are released on time whatever comes next.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

from secantus import cli, server


def main(argv: list[str]) -> int:
    lifetime = 60.0
    if "--transaction-lifetime" in argv:
        at = argv.index("--transaction-lifetime")
        lifetime = float(argv[at + 1])
        argv = argv[:at] + argv[at + 2 :]
    original = server.SecantusDBServer.__init__

    def init(self: server.SecantusDBServer, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **{**kwargs, "transaction_lifetime_seconds": lifetime})
        reaper = threading.Thread(
            target=_reap_forever, args=(self,), name="transaction-reaper", daemon=True
        )
        reaper.start()

    server.SecantusDBServer.__init__ = init
    return int(cli.main(argv))


def _reap_forever(db_server: Any, interval: float = 1.0) -> None:
    while True:
        time.sleep(interval)
        try:
            db_server.transactions.prune_expired()
        except Exception:  # a failed sweep is tried again at the next one
            logging.getLogger(__name__).warning("transaction reaping failed", exc_info=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
