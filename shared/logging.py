"""structlog setup: one JSON object per line on stdout, PII redacted (docs/architecture.md §8, §9).

structlog and stdlib loggers (uvicorn, aiokafka, pymongo) share one handler on the root
logger, so every line has ``timestamp``, ``level``, ``event``, ``logger``, ``service`` and
whatever is bound, including contextvars such as ``request_id``. Log with key-values::

    log = get_logger(__name__)
    log.info("booking.created", appointment_id=appointment_id)

Run uvicorn with ``log_config=None`` so it keeps this setup.

No secret reaches a line: values under secret-like keys (``*token``, ``*secret``,
``*password``, ``*signature``, ``*key``...) are replaced, every query value in a URL or a
logged query string is masked (a provider's ``secret=``, a callback's ``?token=``), so are
passwords in connection URLs, and httpx/httpcore (which log each request's full URL at
INFO) log warnings only.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from shared.privacy import redact_data

__all__ = ["REDACTED", "configure_logging", "get_logger", "redact_processor", "redact_secrets"]

REDACTED = "[redacted]"

_state: dict[str, str] = {"service": "unknown"}
# Keys ProcessorFormatter adds for its own use; removed before rendering.
_FORMATTER_META = frozenset({"_record", "_from_structlog"})
# libraries that log every request's full URL (query included) at INFO
_QUIET_LOGGERS = ("httpx", "httpcore", "hpack")
# a key whose value is a secret, whatever the value looks like (bools and None are kept)
_SECRET_KEY = re.compile(
    r"^key$|(?:^|_)(?:secret|token|password|passwd|signature|sign|authorization|cookie|"
    r"session_key|private_key|secret_key|api_key|access_key|hash_key|encryption_keys?)$",
    re.IGNORECASE,
)
_QUERY_KEYS = frozenset({"query", "query_string", "querystring", "params"})
# a query parameter in a URL (after ? or &), or at the start of a bare query string
_URL_PARAM = re.compile(r"(?P<lead>[?&])(?P<name>[^=&?#\s\"'<>]+)=(?P<value>[^&#\s\"'<>]+)")
_QUERY_PARAM = re.compile(r"(?P<lead>^|&)(?P<name>[^=&#\s]+)=(?P<value>[^&#\s]+)")
_URL_PASSWORD = re.compile(r"(?P<lead>://[^/@\s:]*:)[^/@\s]+@")


class _StdoutHandler(logging.StreamHandler[TextIO]):
    """Writes to the current ``sys.stdout`` at emit time (so test capture sees it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def _add_service(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict.setdefault("service", _state["service"])
    return event_dict


def _mask_param(match: re.Match[str]) -> str:
    return f"{match['lead']}{match['name']}={REDACTED}"


def _mask_text(text: str, *, query: bool = False) -> str:
    """Mask every query value of the URLs in ``text`` (of ``text`` itself if ``query``)."""
    if "=" in text:
        text = _URL_PARAM.sub(_mask_param, text)
        if query:
            text = _QUERY_PARAM.sub(_mask_param, text)
    if "@" in text:
        text = _URL_PASSWORD.sub(lambda m: f"{m['lead']}{REDACTED}@", text)
    return text


def redact_secrets(value: object, *, key: str = "", _depth: int = 0) -> object:
    """Replace secrets in a (redacted, stringified) log value, recursively.

    A value under a secret-like key becomes :data:`REDACTED`; in strings, query values
    and URL passwords are masked.
    """
    if value is None or isinstance(value, bool):
        return value
    if key and _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, str):
        return _mask_text(value, query=key.lower() in _QUERY_KEYS)
    if _depth >= 32:
        return value
    if isinstance(value, dict):
        return {k: redact_secrets(v, key=str(k), _depth=_depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_secrets(v, _depth=_depth + 1) for v in value]
    return value


def redact_processor(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Mask national IDs and phone numbers in every value, recursively (nested keys, ints too),
    and secrets (:func:`redact_secrets`).

    Place it last before the renderer, after ``format_exc_info``, so that the rendered
    exception text is covered too. Objects other than str, numbers and containers are
    turned into their redacted ``str()``.
    """
    return {
        key: (
            value
            if key in _FORMATTER_META
            else redact_secrets(redact_data(value, stringify=True), key=key)
        )
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
    for name in _QUIET_LOGGERS:  # full request URLs (a provider secret in the query) at INFO
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))

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
