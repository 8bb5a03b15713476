"""Alembic environment: runs on the engine that `kizuna.store.migrate` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from kizuna.store.tables import Base

MIGRATION_LOCK = 6_963
"""PostgreSQL advisory lock held while migrating, so that service processes started together
migrate one after the other (the later ones find nothing to do); SQLite's own write lock
does the same there."""

engine = context.config.attributes["engine"]
with engine.connect().execution_options(kizuna_write=True) as connection:  # SQLite: BEGIN IMMEDIATE
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
        connection.commit()
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
        connection.commit()
