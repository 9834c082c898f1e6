"""The declared access of the console's hotline routes (filled in with the routes)."""

from __future__ import annotations

from tests.security.matrix_rules import Rule

HOTLINE_RULES: list[Rule] = []
