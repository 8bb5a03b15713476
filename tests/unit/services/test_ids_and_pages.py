"""Ids sort by creation time; cursors round-trip and refuse what the service never gave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kizuna.services.errors import InvalidRequest
from kizuna.services.ids import new_id
from kizuna.services.pages import decode_cursor, encode_cursor


def test_ids_say_their_kind_and_sort_by_creation() -> None:
    start = datetime(2026, 11, 27, tzinfo=UTC)
    ids = [new_id("project", start + timedelta(milliseconds=i)) for i in range(50)]
    assert all(i.startswith("prj_") and len(i) == 30 for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == 50


@pytest.mark.parametrize("value", ["org_01m8d5aa45a67ngmyhtyp56k9w", 0, 42, 2**62])
def test_a_cursor_round_trips(value: str | int) -> None:
    assert decode_cursor(encode_cursor(value)) == value


@pytest.mark.parametrize("cursor", ["", "not-base64!", "WzFd" + "x", "eyJhIjoxfQ", "W3RydWVd"])
def test_a_made_up_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidRequest, match="not one this service gave out"):
        decode_cursor(cursor)
