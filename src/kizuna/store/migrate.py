"""Alembic migrations, applied on start (`upgrade`) and by `kizuna admin migrate`."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

SCRIPTS = "kizuna.store:migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPTS)
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Brings the database to `revision`; does nothing when it is there already."""
    command.upgrade(alembic_config(engine), revision)
