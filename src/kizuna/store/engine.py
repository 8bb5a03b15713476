"""Engines and transactions: SQLite (embedded default) and PostgreSQL, one behaviour (ADR 0018).

SQLite runs in WAL mode with `synchronous=FULL`, foreign keys on and a long busy timeout; a
transaction that will write starts with `BEGIN IMMEDIATE`, so two writers queue instead of
failing halfway. PostgreSQL runs at READ COMMITTED; the few places that need order (the audit
sequencer) take an advisory lock.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

WRITE = "kizuna_write"
BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str, **options: Any) -> Engine:
    """An engine for `url` (`sqlite:///path` or `postgresql+psycopg://...`)."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url, **options)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_size=20, max_overflow=20, pool_recycle=1800, **options)


def _sqlite_engine(url: str, **options: Any) -> Engine:
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        pool_size=20,
        max_overflow=20,
        **options,
    )

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _wal(cursor)
        for pragma in ("synchronous=FULL", "foreign_keys=ON"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    _WRITERS[engine] = threading.Lock()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _wal(cursor: Any) -> None:
    """Puts the database in WAL mode, once (the mode stays in the file). Switching needs the
    database to itself, and SQLite answers "locked" at once, without waiting, while another
    process holds it (processes starting together, one migrating): wait as a busy handler
    would, up to the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


_WRITERS: WeakKeyDictionary[Engine, threading.Lock] = WeakKeyDictionary()
"""One lock per SQLite engine: threads of a process queue for SQLite's single writer here,
in order, instead of in SQLite's busy handler, which polls with growing sleeps (seconds of
tail latency under 32 concurrent writers)."""


@contextmanager
def writing(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose transaction will write: committed on success, rolled back on error."""
    engine = factory.kw.get("bind")
    lock = _WRITERS.get(engine) if isinstance(engine, Engine) else None
    with lock or nullcontext(), factory() as session:
        session.connection(execution_options={WRITE: True})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def reading(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that only reads; nothing it does is committed. Closing it (not rolling
    back) leaves what it loaded readable afterwards."""
    with factory() as session:
        yield session
