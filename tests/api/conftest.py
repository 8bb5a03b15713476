"""The service on a real store: every test here runs on SQLite and on PostgreSQL (the
`store_url` fixture of tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kizuna.api.testing import Service, running
from kizuna.config import Settings


@pytest.fixture
def settings(store_url: str, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", database_url=store_url)


@pytest.fixture
def service(settings: Settings) -> Iterator[Service]:
    with running(settings, background=False) as service:
        yield service
