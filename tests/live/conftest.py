"""The whole service with its scheduling loop and the local executor, on SQLite and on
PostgreSQL: `live` is a `Service` client whose jobs really run."""

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
def live_settings(store_url: str, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", database_url=store_url, loop_every=0.05)


@pytest.fixture
def live(live_settings: Settings) -> Iterator[Service]:
    app = create_app(live_settings)
    with writing(app.state.kizuna.sessions) as session:
        _, secret = bootstrap(
            session, "admin@office.example", "Ada Admin", "program-office", datetime.now(UTC)
        )
    with TestClient(app) as client:
        yield Service(client, secret)
