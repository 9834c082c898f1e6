"""uuid7 ids sort in creation order."""

from __future__ import annotations

import uuid

import pytest

from shared.ids import new_id, uuid7

pytestmark = pytest.mark.unit


def test_uuid7_has_version_7_and_rfc_variant() -> None:
    value = uuid7()
    assert value.version == 7
    assert value.variant == uuid.RFC_4122


def test_ids_made_in_one_process_sort_in_creation_order() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
