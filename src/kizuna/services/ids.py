"""Ids that say what they name and sort by creation time: `org_01jq8m3k7e2x9v4c6b1n0p5r8t`."""

from __future__ import annotations

import secrets
from datetime import datetime

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base 32, lower case
PREFIXES = {
    "organization": "org",
    "person": "per",
    "membership": "mem",
    "token": "tok",
    "project": "prj",
    "award": "awd",
    "cluster": "cls",
    "node": "nod",
}


def new_id(kind: str, at: datetime) -> str:
    """A new id of `kind`: 10 characters of milliseconds since 1970, 16 of randomness."""
    millis = int(at.timestamp() * 1000)
    return f"{PREFIXES[kind]}_{_encode(millis, 10)}{_encode(secrets.randbits(80), 16)}"


def _encode(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 32)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))
