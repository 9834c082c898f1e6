"""Turn the README's ``bash`` examples into one script that checks every answer it gets.

The README's examples are written to run as they stand against ``make up``. This module
reads them back and instruments them, so a test can run them against a live system:

* every fenced block tagged ``bash`` runs, in the order of the page, as one script (so
  a token or id set in one section is there in the next), unless the block's first line
  is ``# readme: not run (<why>)``;
* a command that calls ``curl`` is checked against the comment line right below it: a
  line starting ``# NNN`` expects that HTTP status, anything else expects a 2xx;
* ``curl`` is a shell function that records each mismatch (and any 5xx) in the file
  ``$README_FAILURES``; a stream (``curl -N``) is read for a few seconds, then closed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FENCE = re.compile(r"^```(\S*)\s*$")
EXPECTATION = re.compile(r"^#\s*(\d{3})\b")
CURL = re.compile(r"(^|[\s(|;&])curl\s")
NOT_RUN = "# readme: not run"

PRELUDE = r"""set -eo pipefail
__expect() { README_EXPECT="$1"; README_COMMAND="$2"; }
curl() {
  local out rc=0 status body stream=()
  for arg in "$@"; do [ "$arg" = "-N" ] && stream=(--max-time "${README_STREAM_SECONDS:-3}"); done
  out=$(command curl -sS "${stream[@]}" -w '\n__HTTP_STATUS__%{http_code}' "$@") || rc=$?
  if [ "$rc" -ne 0 ] && ! { [ "$rc" -eq 28 ] && [ "${#stream[@]}" -gt 0 ]; }; then
    printf 'line %s: curl failed (exit %s)\n' "$README_COMMAND" "$rc" >> "$README_FAILURES"
    return "$rc"
  fi
  status=${out##*__HTTP_STATUS__}
  body=${out%__HTTP_STATUS__*}
  printf 'line %s: %s\n' "$README_COMMAND" "$status" >> "$README_FAILURES.log"
  case "$README_EXPECT:$status" in
    2xx:2??) ;;
    "$status:$status") ;;
    *) printf 'line %s: expected %s, got %s: %.400s\n' \
         "$README_COMMAND" "$README_EXPECT" "$status" "$body" >> "$README_FAILURES" ;;
  esac
  printf '%s\n' "$body"
}
"""


@dataclass(frozen=True)
class Command:
    """One logical shell line (continuations joined) and where it starts in the README."""

    line: int
    text: str
    expect: str | None  # None: not a curl call; "2xx" or an exact status otherwise


def bash_blocks(markdown: str) -> list[tuple[int, list[str]]]:
    """(first line number, lines) of each fenced ``bash`` block that is meant to run."""
    blocks: list[tuple[int, list[str]]] = []
    language: str | None = None  # inside a fence: its info string
    current: list[str] = []
    start = 0
    for number, line in enumerate(markdown.splitlines(), start=1):
        fence = FENCE.match(line)
        if fence and language is None:
            language, current, start = fence.group(1), [], number + 1
        elif fence:
            if language == "bash" and not _not_run(current):
                blocks.append((start, current))
            language = None
        elif language is not None:
            current.append(line)
    return blocks


def _not_run(lines: list[str]) -> bool:
    return bool(lines) and lines[0].strip().startswith(NOT_RUN)


def _open_quote(line: str, quote: str | None) -> str | None:
    """The quote still open at the end of ``line`` (shell rules; ``#`` starts a comment)."""
    escaped = False
    for index, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote is None and char == "#" and (index == 0 or line[index - 1].isspace()):
            break
        elif quote is None and char in "'\"":
            quote = char
        elif char == quote:
            quote = None
    return quote


def commands(start: int, lines: list[str]) -> list[Command]:
    """Logical lines of a block (continuations and open quotes joined), with what each
    curl call expects."""
    logical: list[tuple[int, str]] = []
    pending: list[str] = []
    pending_line = start
    quote: str | None = None
    for offset, line in enumerate(lines):
        if not pending:
            pending_line = start + offset
        pending.append(line)
        quote = _open_quote(line, quote)
        if quote is not None or line.rstrip().endswith("\\"):
            continue
        logical.append((pending_line, "\n".join(pending)))
        pending = []
    if pending:
        logical.append((pending_line, "\n".join(pending)))
    found = []
    for index, (number, text) in enumerate(logical):
        stripped = text.strip()
        expect = None
        if not stripped.startswith("#") and CURL.search(stripped):
            following = logical[index + 1][1].strip() if index + 1 < len(logical) else ""
            matched = EXPECTATION.match(following)
            expect = matched.group(1) if matched else "2xx"
        found.append(Command(number, text, expect))
    return found


def script(markdown: str) -> tuple[str, int]:
    """The instrumented script and how many curl calls it checks."""
    parts = [PRELUDE]
    checked = 0
    for start, lines in bash_blocks(markdown):
        for command in commands(start, lines):
            if command.expect is not None:
                parts.append(f"__expect {command.expect} {command.line}")
                checked += 1
            parts.append(command.text)
    return "\n".join(parts) + "\n", checked
