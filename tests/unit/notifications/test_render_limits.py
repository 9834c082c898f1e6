"""Rendering is bounded where it is cheap: output per part, ``*`` and ``**``."""

from __future__ import annotations

import pytest

from services.notifications.message_kinds import ChannelTemplate
from services.notifications.rendering import (
    DEFAULT_MAX_OUTPUT,
    OutputTooLarge,
    RenderError,
    render,
    render_text,
)


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(99999) %}{{ '0123456789' }}{% endfor %}",  # 1 MB, bit by bit
        "{{ 'x' * 100000000 }}",  # 100 MB in one step
        "{{ 100000000 * 'x' }}",
        "{{ ['x'] * 100000000 }}",
        "{{ 9 ** 99999999 }}",
        "{{ range(10 ** 9) | list }}",
    ],
)
def test_huge_output_is_refused(source: str) -> None:
    with pytest.raises(OutputTooLarge):
        render_text(source, {})


def test_the_limit_is_in_bytes_and_adjustable() -> None:
    assert render_text("{{ '字' * 100 }}", {}, max_output=300) == "字" * 100
    with pytest.raises(OutputTooLarge):
        render_text("{{ '字' * 101 }}", {}, max_output=300)  # 303 bytes of UTF-8
    assert len(render_text("{{ 'a' * 16000 }}", {})) == 16000 <= DEFAULT_MAX_OUTPUT


def test_every_part_of_a_template_is_bounded() -> None:
    big = "{% for i in range(5000) %}{{ 'abcd' }}{% endfor %}"  # 20 KB
    for template in (
        ChannelTemplate(title=big),
        ChannelTemplate(body=big),
        ChannelTemplate(fields={"thing1": big}),
        ChannelTemplate(page=big),
    ):
        with pytest.raises(OutputTooLarge):
            render(template, {})


def test_too_large_is_a_render_error_so_sends_fall_back_to_the_builtin_template() -> None:
    assert issubclass(OutputTooLarge, RenderError)


def test_ordinary_arithmetic_still_works() -> None:
    assert render_text("{{ 'ab' * 3 }} {{ 2 ** 10 }} {{ 3 * 4 }} {{ [1] * 2 }}", {}) == (
        "ababab 1024 12 [1, 1]"
    )
