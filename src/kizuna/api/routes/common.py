"""Query parameters every list shares."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from kizuna.services.pages import MAX_LIMIT

Cursor = Annotated[str | None, Query(max_length=200, description="From `next_cursor`")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")]
DEFAULT_LIMIT = 50
