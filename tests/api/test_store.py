"""The store itself, on SQLite and PostgreSQL: migrations, durability settings, sequencing."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import inspect, select, text

from kizuna.audit.checkpoint import SigningKey
from kizuna.audit.merkle import Tree
from kizuna.services import audit_log
from kizuna.services.context import Context
from kizuna.services.principal import Principal
from kizuna.store.engine import make_engine, session_factory, writing
from kizuna.store.migrate import upgrade
from kizuna.store.tables import AuditEntry, Base

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def test_migrations_make_every_table_and_run_twice_harmlessly(store_url: str) -> None:
    engine = make_engine(store_url)
    upgrade(engine)
    upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()


def test_sqlite_runs_in_wal_with_full_sync_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/k.db")
    with engine.connect() as connection:
        pragma = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys")
        }
    assert pragma == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1}
    engine.dispose()


def test_the_sequencer_numbers_entries_in_commit_order_across_batches(store_url: str) -> None:
    engine = make_engine(store_url)
    upgrade(engine)
    sessions = session_factory(engine)
    who = Principal("per_x", "x@y.example")
    for i in range(10):
        with writing(sessions) as session:
            audit_log.record(
                Context(session, who, NOW),
                "test.thing",
                before={"i": i},
                object_type="thing",
                object_id=str(i),
            )
    with writing(sessions) as session:
        assert audit_log.sequence(session, batch_size=3) == 10
    with writing(sessions) as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.leaf_index)).all()
        assert [e.leaf_index for e in entries] == list(range(10))
        assert [e.object_id for e in entries] == [str(i) for i in range(10)]
        hashes = [audit_log.as_record(e).leaf_hash() for e in entries]
        assert [e.leaf_hash for e in entries] == hashes
        log = audit_log.LogState("test", SigningKey.generate("test"))
        made = audit_log.checkpoint(session, log, NOW)
        assert made.size == 10 and made.root == Tree(hashes).root()
    engine.dispose()


def test_processes_starting_together_migrate_one_after_the_other(store_url: str) -> None:
    if store_url.startswith("postgresql"):  # a fresh database, as a first start finds it
        engine = make_engine(store_url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(migrate, [store_url] * 3))
    engine = make_engine(store_url)
    assert {t.name for t in Base.metadata.sorted_tables} <= set(inspect(engine).get_table_names())
    engine.dispose()


def migrate(url: str) -> None:
    """One service process's start (Alembic's context is per process, not per thread)."""
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
