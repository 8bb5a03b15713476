"""What every service call is given: the session, who asks, when, and for which request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from kizuna.services.principal import Principal

if TYPE_CHECKING:
    from kizuna.services.nodes import ShapeCache
from kizuna.store.tables import Base


@dataclass(frozen=True)
class Context:
    session: Session
    principal: Principal
    now: datetime
    request_id: str | None = None
    shapes: ShapeCache | None = None
    """The service's cache of the cluster's shape; None: read the nodes each time."""


SECRET_COLUMNS = frozenset({"secret_hash", "password_hash"})


def row_state(row: Base) -> dict[str, Any]:
    """A row's columns as JSON values, secrets left out: an audit entry's before/after."""
    state: dict[str, Any] = {}
    for column in inspect(row).mapper.column_attrs:
        if column.key in SECRET_COLUMNS:
            continue
        value = getattr(row, column.key)
        if isinstance(value, datetime):
            value = value.isoformat().replace("+00:00", "Z")
        elif isinstance(value, bytes):
            value = value.hex()
        state[column.key] = value
    return state
