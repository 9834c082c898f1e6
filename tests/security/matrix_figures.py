"""The declared access of the console's figures routes (filled in with the routes)."""

from __future__ import annotations

from tests.security.matrix_rules import Rule

FIGURES_RULES: list[Rule] = []
