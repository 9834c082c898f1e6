"""The README harness reads the page's examples and their expected statuses right."""

from __future__ import annotations

import pytest

from tests.support.readme_script import bash_blocks, commands, script

pytestmark = pytest.mark.unit

PAGE = """# Title

```bash
A=$(curl -s -XPOST $GW/x \\
  -d '{}')
# 201 {"id": 1}
curl -s $GW/y
echo done
curl -s $GW/z
# 404 {"code":"not_found"}
# errors: 409 {"code":"conflict"}
```

```bash
curl -s $GW/quoted -d '{"a": 1,
  "b": "x # not a comment"}'
# 422 {"code":"x"}
```

```text
curl -s $GW/not-bash
```

```bash
# readme: not run (needs a real WeChat app)
curl -s $GW/wechat
```

```json
{"curl ": 1}
```
"""


def test_only_bash_blocks_meant_to_run_are_read() -> None:
    blocks = bash_blocks(PAGE)
    assert [start for start, _ in blocks] == [4, 15]
    assert "not-bash" not in script(PAGE)[0]
    assert "wechat" not in script(PAGE)[0]


def test_each_curl_call_expects_the_status_written_under_it_or_a_2xx() -> None:
    start, lines = bash_blocks(PAGE)[0]
    found = [(c.line, c.expect) for c in commands(start, lines) if c.expect is not None]
    assert found == [(4, "201"), (7, "2xx"), (9, "404")]


def test_a_quote_open_across_lines_keeps_the_command_together() -> None:
    start, lines = bash_blocks(PAGE)[1]
    found = commands(start, lines)
    assert [(c.line, c.expect) for c in found if c.expect] == [(15, "422")]
    assert found[0].text.endswith("not a comment\"}'")


def test_the_script_checks_every_call_and_keeps_continuations_together() -> None:
    text, checked = script(PAGE)
    assert checked == 4
    assert "__expect 201 4\nA=$(curl -s -XPOST $GW/x \\\n  -d '{}')" in text
    assert "__expect 404 9\ncurl -s $GW/z" in text
    assert text.startswith("set -eo pipefail")
