"""Fixtures every test folder may use: a real PostgreSQL for the store.

PostgreSQL is the one on 127.0.0.1:5432 (trust auth; `.ci/run` starts one where it is missing).
Each test session makes a database of its own; `store_url` gives each test an empty store,
SQLite in its tmp folder or that database with its tables emptied.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from kizuna.store.engine import make_engine
from kizuna.store.migrate import upgrade
from kizuna.store.tables import Base

PG_SERVER = os.environ.get("KIZUNA_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
STORES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    name = f"kizuna_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_SERVER} ({exc}); run .ci/run or"
            " scripts/services, which start it"
        )
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_SERVER}/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty_postgres(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kizuna.db'}"
    url: str = request.getfixturevalue("postgres_url")
    empty_postgres(url)
    return url
