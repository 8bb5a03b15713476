"""Cursor pagination for every list: items in id order, an opaque cursor for the next page."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from kizuna.services.errors import InvalidRequest
from kizuna.services.principal import Principal

T = TypeVar("T")
MAX_LIMIT = 500


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


def encode_cursor(last_id: str | int) -> str:
    return base64.urlsafe_b64encode(json.dumps([last_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str | int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = json.loads(raw)
        if not isinstance(decoded, list):
            raise TypeError(cursor)
        (value,) = decoded
    except (ValueError, TypeError) as exc:
        raise InvalidRequest([f"cursor {cursor!r} is not one this service gave out"]) from exc
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidRequest([f"cursor {cursor!r} is not one this service gave out"])
    return value


def visible_only(
    statement: Select[T], organization: InstrumentedAttribute[str], principal: Principal
) -> Select[T]:
    """R1 (ADR 0019): rows of the organizations the caller sees, and no others."""
    visible = principal.visible_organizations()
    return statement if visible is None else statement.where(organization.in_(visible))


def page(
    session: Session,
    statement: Select[T],
    id_column: InstrumentedAttribute[Any],
    cursor: str | None,
    limit: int,
) -> Page[T]:
    """One page of `statement`'s rows after `cursor`, at most `limit` of them."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest([f"limit must be between 1 and {MAX_LIMIT} (got {limit})"])
    if cursor is not None:
        statement = statement.where(id_column > decode_cursor(cursor))
    rows = list(session.scalars(statement.order_by(id_column).limit(limit + 1)))
    if len(rows) <= limit:
        return Page(rows, None)
    last = getattr(rows[limit - 1], id_column.key)
    return Page(rows[:limit], encode_cursor(last))
