"""Query parameters every list shares."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query

from kizuna.api.schemas import NO_NUL, Instant
from kizuna.services.pages import MAX_LIMIT

Cursor = Annotated[str | None, Query(max_length=200, description="From `next_cursor`")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")]
DEFAULT_LIMIT = 50
Filter = Annotated[str | None, Query(min_length=1, max_length=130, pattern=NO_NUL)]
"""A list filter naming an organization, project, GPU type or person."""
At = Annotated[Instant | None, Query(description="An RFC 3339 instant")]


def ref(max_length: int, description: str) -> Any:
    """A path segment naming an object by id or name (FastAPI's `Path` is typed as Any)."""
    return Path(min_length=1, max_length=max_length, pattern=NO_NUL, description=description)
