"""Replicas starting at the same moment on a fresh database both create its collections."""

from __future__ import annotations

import asyncio

import pytest
from pymongo import ASCENDING, AsyncMongoClient, IndexModel

from shared.mongo import CollectionIndexes, Document, ensure_indexes

pytestmark = pytest.mark.integration


async def test_two_replicas_creating_the_same_collections_both_start(
    mongo: AsyncMongoClient[Document], run_id: str
) -> None:
    db = mongo[f"{run_id}_indexes"]
    specs = [
        CollectionIndexes(f"c{n}", [IndexModel([("k", ASCENDING)], name="k")]) for n in range(20)
    ]
    await asyncio.gather(*(ensure_indexes(db, specs) for _ in range(4)))
    assert set(await db.list_collection_names()) >= {f"c{n}" for n in range(20)}
    assert "k" in await db["c7"].index_information()
