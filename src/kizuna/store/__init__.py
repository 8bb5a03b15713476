"""The store: SQLAlchemy 2 tables, engines for SQLite and PostgreSQL, Alembic migrations.

Only this package and `kizuna.services` speak SQL (ADR 0018).
"""
