"""Rendering templates in Jinja2's sandbox, with the filters patient messages need.

Templates come from the message kind files (built in) or from staff (stored versions), so
they run in a :class:`~jinja2.sandbox.SandboxedEnvironment` with ``StrictUndefined``: a
template may not reach into Python objects, and a missing variable is an error, not an
empty string.

Rendering is bounded where it is cheap to bound: each part's output is streamed and cut off
at ``max_output`` bytes (:class:`OutputTooLarge`), and ``*`` / ``**`` may not build a
huge string, list or number in one step. Loops are not bounded here: staff previews and
publishing render in a separate process with a time limit
(:mod:`services.notifications.preview_worker`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from services.notifications.message_kinds import ChannelTemplate
from services.notifications.providers.base import Rendered

SESSION_NAMES = {
    "zh-CN": {"morning": "上午", "afternoon": "下午", "night": "夜间"},
    "en": {"morning": "morning", "afternoon": "afternoon", "night": "evening"},
}
WECHAT_THING_MAX = 20  # WeChat limits a "thing" field to 20 characters
MAX_BODY = 1000
DEFAULT_MAX_OUTPUT = 16 * 1024  # bytes of one part's output before it is cut off
MAX_REPEAT = 64 * 1024  # items of a string or list built by one ``*``
MAX_EXPONENT = 1024


class RenderError(ValueError):
    """A template that does not compile or does not render with the given context."""


class OutputTooLarge(RenderError):
    """A template whose output (or one value it builds) is over the limit."""


class TemplateTooSlow(RenderError):
    """A template that did not finish rendering in time (raised by the preview worker)."""


class _BoundedSandbox(SandboxedEnvironment):
    """The sandbox, with ``*`` and ``**`` checked before they run."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for items, times in ((left, right), (right, left)):
                if (
                    isinstance(items, str | list | tuple)
                    and isinstance(times, int)
                    and len(items) * times > MAX_REPEAT
                ):
                    raise OutputTooLarge(f"a value of over {MAX_REPEAT} items")
        elif operator == "**" and isinstance(right, int) and abs(right) > MAX_EXPONENT:
            raise OutputTooLarge(f"an exponent over {MAX_EXPONENT}")
        return super().call_binop(context, operator, left, right)


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _make_environment() -> SandboxedEnvironment:
    env = _BoundedSandbox(undefined=StrictUndefined, autoescape=False)

    def local_time(value: Any, tz: str = "Asia/Shanghai") -> str:
        return _as_datetime(value).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")

    def local_clock(value: Any, tz: str = "Asia/Shanghai") -> str:
        return _as_datetime(value).astimezone(ZoneInfo(tz)).strftime("%H:%M")

    def local_date(value: Any, tz: str = "Asia/Shanghai") -> str:
        if isinstance(value, datetime) or (isinstance(value, str) and "T" in value):
            return _as_datetime(value).astimezone(ZoneInfo(tz)).date().isoformat()
        return value.isoformat() if isinstance(value, date) else str(value)[:10]

    def session_name(value: Any, language: str = "zh-CN") -> str:
        names = SESSION_NAMES.get(language, SESSION_NAMES["zh-CN"])
        return names.get(str(value), str(value))

    env.filters.update(
        local_time=local_time,
        local_clock=local_clock,
        local_date=local_date,
        session_name=session_name,
    )
    return env


_ENV = _make_environment()


@lru_cache(maxsize=2048)
def _compile(source: str) -> Template:
    return _ENV.from_string(source)


def render_text(
    source: str, context: Mapping[str, Any], max_output: int = DEFAULT_MAX_OUTPUT
) -> str:
    """Render one part; :class:`OutputTooLarge` once its output passes ``max_output`` bytes."""
    if not source:
        return ""
    parts: list[str] = []
    size = 0
    try:
        for chunk in _compile(source).generate(**context):
            size += len(chunk.encode("utf-8", "surrogatepass"))
            if size > max_output:
                raise OutputTooLarge(f"the output is over {max_output} bytes")
            parts.append(chunk)
    except RenderError:
        raise
    except TemplateError as exc:
        raise RenderError(f"{type(exc).__name__}: {exc}") from exc
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # a filter's bad input
        raise RenderError(f"{type(exc).__name__}: {exc}") from exc
    except (OverflowError, MemoryError, RecursionError) as exc:
        raise OutputTooLarge(f"{type(exc).__name__}: {exc}") from exc
    return "".join(parts).strip()


def render(
    template: ChannelTemplate, context: Mapping[str, Any], max_output: int = DEFAULT_MAX_OUTPUT
) -> Rendered:
    """Render every part of one channel's template; raises :class:`RenderError`."""

    def part(source: str) -> str:
        return render_text(source, context, max_output)

    fields = {name: _fit_field(name, part(source)) for name, source in template.fields.items()}
    return Rendered(
        title=part(template.title)[:100],
        body=part(template.body)[:MAX_BODY],
        fields=fields,
        page=part(template.page) or None,
    )


def _fit_field(name: str, value: str) -> str:
    """WeChat rejects over-long ``thing`` values (errcode 47003): shorten them ourselves."""
    if name.startswith("thing") and len(value) > WECHAT_THING_MAX:
        return value[: WECHAT_THING_MAX - 1] + "…"
    return value
