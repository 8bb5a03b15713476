"""The stores a benchmark runs on: a SQLite file in its folder, or a fresh PostgreSQL database
on the server of $KIZUNA_TEST_POSTGRES (default 127.0.0.1:5432, trust auth), dropped after."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg

PG_SERVER = os.environ.get("KIZUNA_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def database(store: str, home: Path) -> str:
    if store == "sqlite":
        return f"sqlite:///{home / 'kizuna.db'}"
    name = f"kizuna_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"{PG_SERVER}/{name}"


def drop(url: str) -> None:
    if url.startswith("postgresql"):
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
