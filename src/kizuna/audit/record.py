"""An audit record and the exact bytes its leaf hashes (ADR 0017, rules L2-L3).

A leaf is the canonical JSON of one record (rule L2): object keys sorted by code point,
separators "," and ":" with no whitespace, UTF-8 (no \\u escapes beyond what JSON demands),
and only values that read back the same everywhere: null, true, false, strings, integers
within ±(2**53 - 1) (RFC 7493's I-JSON range), lists and objects with string keys. Floats
are refused, NaN and Infinity with them: a float's text differs between JSON libraries
(1e+16, 1e16, 10000000000000000) and a database's JSON type may rewrite it, which would
change the hash of a record nobody touched. Write amounts as integers of a small unit or as
decimal strings; write times as RFC 3339 strings. Strings are hashed as given (no Unicode
normalisation).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from kizuna.audit.merkle import leaf_hash

MAX_SAFE_INTEGER = 2**53 - 1
"""The largest integer magnitude a leaf may hold (I-JSON, RFC 7493 §2.2)."""

JsonValue = Any
"""A JSON value as `json.loads` gives it: None, bool, int, str, list or dict with str keys."""


def canonical_json(value: JsonValue) -> bytes:
    """The canonical bytes of a JSON value (rule L2); ValueError names the first bad place."""
    check_json(value)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def check_json(value: JsonValue, where: str = "value") -> None:
    """Raise ValueError, naming the place (e.g. `after.quota[2]`), unless `value` is JSON
    that rule L2 accepts."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValueError(
                f"{where}: integer {value} is outside ±(2**53 - 1); write it as a string"
            )
        return
    if isinstance(value, str):
        _check_text(value, where)
        return
    if isinstance(value, float):
        raise ValueError(
            f"{where}: floats are not allowed in audit records ({value!r}); use an integer "
            "of a smaller unit or a decimal string"
        )
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_json(item, f"{where}[{i}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: object key {key!r} is not a string")
            _check_text(key, f"{where} key {key!r}")
            check_json(item, f"{where}.{key}")
        return
    raise ValueError(f"{where}: {type(value).__name__} is not a JSON value")


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"{where}: not valid Unicode text ({error.reason})") from None


_AT = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})T(?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})"
    r"(?:\.\d{1,9})?Z"
)
_ACTOR = re.compile(r"system|(?:person|token):[!-~]+")
_ACTION = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")
_OBJECT_TYPE = re.compile(r"[a-z][a-z0-9_]*")
_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One entry of the audit log: who did what to which object, and its state before and
    after. `seq` is its 0-based position in the log (rule L3). Every field is checked when
    the record is made, so a record that exists has canonical bytes."""

    seq: int
    at: str
    """When, in RFC 3339 UTC with a `Z`, e.g. "2026-11-27T10:00:00.123456Z"."""
    actor: str
    """Who: "person:<id>", "token:<id>" or "system"."""
    action: str
    """Dotted lower-case words, e.g. "project.create"."""
    object_type: str
    object_id: str
    organization_id: str | None
    before: JsonValue
    """The object's state before the action (None: it did not exist)."""
    after: JsonValue
    """The object's state after the action (None: it no longer exists)."""
    request_id: str | None

    KEYS: ClassVar[tuple[str, ...]] = (
        "seq",
        "at",
        "actor",
        "action",
        "object_type",
        "object_id",
        "organization_id",
        "before",
        "after",
        "request_id",
    )
    """The keys of `to_json`, in field order: all present in every record, no others."""

    def __post_init__(self) -> None:
        if not isinstance(self.seq, int) or isinstance(self.seq, bool) or self.seq < 0:
            raise ValueError(f"seq: a record's position is an integer >= 0, not {self.seq!r}")
        if self.seq > MAX_SAFE_INTEGER:
            raise ValueError(f"seq: {self.seq} is outside ±(2**53 - 1)")
        _check_at(self.at)
        _check_pattern("actor", self.actor, _ACTOR, '"person:<id>", "token:<id>" or "system"')
        _check_pattern("action", self.action, _ACTION, 'dotted lower-case words, "project.create"')
        _check_pattern("object_type", self.object_type, _OBJECT_TYPE, 'a lower-case word, "award"')
        _check_id("object_id", self.object_id)
        if self.organization_id is not None:
            _check_id("organization_id", self.organization_id)
        check_json(self.before, "before")
        check_json(self.after, "after")
        if self.request_id is not None:
            _check_id("request_id", self.request_id)

    def to_json(self) -> dict[str, JsonValue]:
        """The record as a JSON object with every key of `KEYS`."""
        return {key: getattr(self, key) for key in self.KEYS}

    @classmethod
    def from_json(cls, value: Mapping[str, JsonValue]) -> AuditRecord:
        """The record of a JSON object with exactly the keys of `KEYS`; ValueError names an
        unknown, missing or bad key."""
        if not isinstance(value, Mapping):
            raise ValueError(f"an audit record is a JSON object, not {type(value).__name__}")
        unknown = sorted(str(k) for k in value if k not in cls.KEYS)
        if unknown:
            raise ValueError(f"unknown key(s) in audit record: {', '.join(unknown)}")
        missing = [k for k in cls.KEYS if k not in value]
        if missing:
            raise ValueError(f"missing key(s) in audit record: {', '.join(missing)}")
        return cls(**{key: value[key] for key in cls.KEYS})

    def leaf_data(self) -> bytes:
        """The bytes this record's leaf hashes: `canonical_json(to_json())` (rule L2)."""
        return canonical_json(self.to_json())

    def leaf_hash(self) -> bytes:
        """SHA-256(0x00 || leaf_data()): this record's leaf in the log's tree (rule L1)."""
        return leaf_hash(self.leaf_data())


def _check_at(at: object) -> None:
    if not isinstance(at, str):
        raise ValueError(f"at: a time is an RFC 3339 UTC string, not {type(at).__name__}")
    match = _AT.fullmatch(at)
    if match is None:
        raise ValueError(f'at: {at!r} is not RFC 3339 UTC like "2026-11-27T10:00:00.123456Z"')
    year, month, day = int(match["y"]), int(match["mo"]), int(match["d"])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= month <= 12 or not 1 <= day <= _DAYS[month - 1] - (month == 2 and not leap):
        raise ValueError(f"at: {at!r} is not a calendar date")
    if int(match["h"]) > 23 or int(match["mi"]) > 59 or int(match["s"]) > 59:
        raise ValueError(f"at: {at!r} is not a time of day")


def _check_pattern(key: str, value: object, pattern: re.Pattern[str], shape: str) -> None:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise ValueError(f"{key}: {value!r} is not {shape}")


def _check_id(key: str, value: object) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{key}: an id is a string, not {type(value).__name__}")
    if not value or any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError(f"{key}: {value!r} is not a non-empty id without spaces")
    _check_text(value, key)
