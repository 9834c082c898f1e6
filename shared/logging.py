"""structlog setup: one JSON object per line on stdout, PII redacted (docs/architecture.md §8, §9).

structlog and stdlib loggers (uvicorn, aiokafka, pymongo) share one handler on the root
logger, so every line has ``timestamp``, ``level``, ``event``, ``logger``, ``service`` and
whatever is bound, including contextvars such as ``request_id``. Log with key-values::

    log = get_logger(__name__)
    log.info("booking.created", appointment_id=appointment_id)

Run uvicorn with ``log_config=None`` so it keeps this setup.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from shared.privacy import redact_data

__all__ = ["configure_logging", "get_logger", "redact_processor"]

_state: dict[str, str] = {"service": "unknown"}
# Keys ProcessorFormatter adds for its own use; removed before rendering.
_FORMATTER_META = frozenset({"_record", "_from_structlog"})


class _StdoutHandler(logging.StreamHandler[TextIO]):
    """Writes to the current ``sys.stdout`` at emit time (so test capture sees it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def _add_service(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict.setdefault("service", _state["service"])
    return event_dict


def redact_processor(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Mask national IDs and phone numbers in every value, recursively (nested keys, ints too).

    Place it last before the renderer, after ``format_exc_info``, so that the rendered
    exception text is covered too. Objects other than str, numbers and containers are
    turned into their redacted ``str()``.
    """
    return {
        key: value if key in _FORMATTER_META else redact_data(value, stringify=True)
        for key, value in event_dict.items()
    }


def _shared_processors() -> list[Processor]:
    """Run for both structlog and foreign (stdlib) records."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        _add_service,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]


def configure_logging(service: str, level: str = "INFO", json: bool = True) -> None:
    """Configure structlog and the root logger; calling it again replaces the setup."""
    _state["service"] = service
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            redact_processor,
            renderer,
        ],
    )
    handler = _StdoutHandler()
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StdoutHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn installs its own handlers when it configures logging; route through ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
        uvicorn_logger.disabled = False  # a dictConfig elsewhere may have switched it off
        uvicorn_logger.setLevel(logging.NOTSET)  # ... or an earlier uvicorn.Config its level

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(ignore_frame_names=[__name__]),
        wrapper_class=structlog.stdlib.BoundLogger,
        # no caching: loggers made at import time must follow later (re)configuration
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger named ``name`` (the calling module when omitted)."""
    if name is None:
        return structlog.stdlib.get_logger()
    return structlog.stdlib.get_logger(name)
