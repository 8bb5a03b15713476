"""The service on a real store: every test here runs on SQLite and on PostgreSQL (the
`store_url` fixture of tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kizuna.api.app import create_app
from kizuna.api.testing import Service
from kizuna.config import Settings
from kizuna.services.bootstrap import bootstrap
from kizuna.store.engine import writing


@pytest.fixture
def settings(store_url: str, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", database_url=store_url)


@pytest.fixture
def service(settings: Settings) -> Iterator[Service]:
    app = create_app(settings, background=False)
    with writing(app.state.kizuna.sessions) as session:
        _, secret = bootstrap(
            session, "admin@office.example", "Ada Admin", "program-office", datetime.now(UTC)
        )
    with TestClient(app) as client:
        yield Service(client, secret)
