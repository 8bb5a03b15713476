"""The whole service with its scheduling loop and the local executor, on SQLite and on
PostgreSQL: `live` is a `Service` client whose jobs really run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kizuna.api.testing import Service, running
from kizuna.config import Settings


@pytest.fixture
def live_settings(store_url: str, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", database_url=store_url, loop_every=0.05)


@pytest.fixture
def live(live_settings: Settings) -> Iterator[Service]:
    with running(live_settings) as service:
        yield service
