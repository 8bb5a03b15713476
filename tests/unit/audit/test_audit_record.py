"""Audit records and their canonical bytes (ADR 0017, rules L2-L3)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from kizuna.audit import AuditRecord, canonical_json

RECORD: dict[str, Any] = {
    "seq": 0,
    "at": "2026-11-27T10:00:00.123456Z",
    "actor": "person:42",
    "action": "project.create",
    "object_type": "project",
    "object_id": "p-7",
    "organization_id": "org-1",
    "before": None,
    "after": {"name": "Kōbe lab", "gpus": 8, "tags": ["a", "b"], "active": True},
    "request_id": "req-9",
}

LEAF_DATA = (
    '{"action":"project.create","actor":"person:42","after":{"active":true,"gpus":8,'
    '"name":"Kōbe lab","tags":["a","b"]},"at":"2026-11-27T10:00:00.123456Z","before":null,'
    '"object_id":"p-7","object_type":"project","organization_id":"org-1",'
    '"request_id":"req-9","seq":0}'
).encode()


def _record(**changes: Any) -> AuditRecord:
    return AuditRecord.from_json({**RECORD, **changes})


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    assert canonical_json({"b": [1, {"d": None, "c": False}], "a": "é"}) == (
        '{"a":"é","b":[1,{"c":false,"d":null}]}'.encode()
    )
    assert canonical_json("line\nbreak \u2028") == b'"line\\nbreak \xe2\x80\xa8"'
    assert canonical_json((1, 2)) == canonical_json([1, 2]) == b"[1,2]"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.5, r"value: floats are not allowed"),
        ({"a": [0, float("nan")]}, r"value\.a\[1\]: floats are not allowed"),
        ({"a": {"b": 2**53}}, r"value\.a\.b: integer 9007199254740992 is outside"),
        ([-(2**53)], r"value\[0\]: integer"),
        ({1: "x"}, r"value: object key 1 is not a string"),
        ({"s": "\ud800"}, r"value\.s: not valid Unicode"),
        ({"\udfff": 1}, r"key '\\udfff': not valid Unicode"),
        ({"t": {1, 2}}, r"value\.t: set is not a JSON value"),
    ],
)
def test_canonical_json_refuses_what_does_not_read_back_the_same(
    value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        canonical_json(value)


def test_the_largest_safe_integers_are_fine() -> None:
    assert canonical_json([2**53 - 1, -(2**53 - 1)]) == b"[9007199254740991,-9007199254740991]"


def test_leaf_bytes_are_pinned() -> None:
    """A change here changes every leaf hash of every log ever written: ADR 0017, L2."""
    record = _record()
    assert record.leaf_data() == LEAF_DATA
    assert record.leaf_hash() == hashlib.sha256(b"\x00" + LEAF_DATA).digest()


def test_json_round_trip() -> None:
    record = _record()
    assert record.to_json() == RECORD
    assert list(record.to_json()) == list(AuditRecord.KEYS)
    assert AuditRecord.from_json(json.loads(json.dumps(record.to_json()))) == record
    assert AuditRecord.from_json(json.loads(record.leaf_data())) == record


def test_optional_fields_may_be_null() -> None:
    record = _record(organization_id=None, request_id=None, before={"x": 1}, after=None)
    assert record.to_json()["organization_id"] is None
    assert b'"after":null' in record.leaf_data()


def test_unknown_and_missing_keys_are_named() -> None:
    with pytest.raises(ValueError, match="unknown key\\(s\\) in audit record: extra, zz"):
        AuditRecord.from_json({**RECORD, "zz": 1, "extra": 2})
    partial = {k: v for k, v in RECORD.items() if k not in ("before", "actor")}
    with pytest.raises(ValueError, match="missing key\\(s\\) in audit record: actor, before"):
        AuditRecord.from_json(partial)
    with pytest.raises(ValueError, match="a JSON object, not list"):
        AuditRecord.from_json([])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seq": -1}, "seq: a record's position"),
        ({"seq": True}, "seq: a record's position"),
        ({"seq": "3"}, "seq: a record's position"),
        ({"seq": 2**53}, "seq: 9007199254740992 is outside"),
        ({"at": "2026-11-27T10:00:00+00:00"}, "at: .* is not RFC 3339 UTC"),
        ({"at": "2026-11-27 10:00:00Z"}, "at: .* is not RFC 3339 UTC"),
        ({"at": 1700000000}, "at: a time is an RFC 3339 UTC string, not int"),
        ({"at": "2026-02-29T10:00:00Z"}, "not a calendar date"),
        ({"at": "2026-13-01T10:00:00Z"}, "not a calendar date"),
        ({"at": "2026-11-27T24:00:00Z"}, "not a time of day"),
        ({"actor": "person:"}, "actor: 'person:' is not"),
        ({"actor": "robot:1"}, "actor: 'robot:1' is not"),
        ({"actor": "person:a b"}, "actor: 'person:a b' is not"),
        ({"action": "create"}, "action: 'create' is not dotted"),
        ({"action": "Project.Create"}, "action: 'Project.Create' is not dotted"),
        ({"object_type": "Project"}, "object_type: 'Project' is not a lower-case word"),
        ({"object_id": ""}, "object_id: '' is not a non-empty id"),
        ({"object_id": 7}, "object_id: an id is a string, not int"),
        ({"organization_id": "a\tb"}, "organization_id: 'a\\\\tb' is not"),
        ({"request_id": 5}, "request_id: an id is a string"),
        ({"before": {"gpu_hours": 1.5}}, "before.gpu_hours: floats are not allowed"),
        ({"after": [float("inf")]}, r"after\[0\]: floats are not allowed"),
    ],
)
def test_each_field_is_checked(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _record(**changes)


def test_good_variants_are_accepted() -> None:
    assert _record(at="2024-02-29T00:00:00Z").at.endswith("Z")
    assert _record(at="2026-11-27T10:00:00.1Z").seq == 0
    assert _record(actor="system").actor == "system"
    assert _record(actor="token:tk_01HX").actor == "token:tk_01HX"
    assert _record(action="award.gpu_hours.change").action == "award.gpu_hours.change"


def test_records_are_frozen() -> None:
    record = _record()
    with pytest.raises(AttributeError):
        record.seq = 1  # type: ignore[misc]
