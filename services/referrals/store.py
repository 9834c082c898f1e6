"""The referrals service's collections and their indexes (it owns all of these)."""

from __future__ import annotations

from shared.mongo import CollectionIndexes

INDEXES: list[CollectionIndexes] = []
