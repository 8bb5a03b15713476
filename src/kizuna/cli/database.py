"""The admin verbs' direct work on the service's database (`kizuna admin`, `kizuna server`).

Imported only by those verbs, so that the others start without the database layer.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from kizuna.cli.client import EXIT_CONFLICT, EXIT_FAILED, EXIT_INVALID, CliError, local_problem
from kizuna.config import Settings
from kizuna.kernel.errors import InvalidRequest
from kizuna.services.bootstrap import bootstrap
from kizuna.services.errors import Conflict
from kizuna.store.engine import make_engine, session_factory, writing
from kizuna.store.migrate import upgrade


def safe_url(url: str) -> str:
    """A database URL without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def migrated(settings: Settings) -> Engine:
    """An engine on the settings' database, brought to the newest schema."""
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.database)
        upgrade(engine)
    except (SQLAlchemyError, ArgumentError, OSError) as error:
        raise _failed(settings, error) from None
    return engine


def migrate(settings: Settings) -> None:
    """Brings the settings' database to the newest schema."""
    migrated(settings).dispose()


def first_admin(
    settings: Settings, email: str, name: str, organization: str
) -> tuple[str, str, str]:
    """(person id, email, token secret) of the first program admin, made by `bootstrap`."""
    engine = migrated(settings)
    try:
        with writing(session_factory(engine)) as session:
            person, secret = bootstrap(session, email, name, organization, datetime.now(UTC))
            return person.id, person.email, secret
    except Conflict as error:
        raise local_problem("Conflict", str(error), EXIT_CONFLICT, status=409) from None
    except InvalidRequest as error:
        raise local_problem(
            "Invalid request",
            str(error),
            EXIT_INVALID,
            status=422,
            errors=[{"detail": p} for p in error.problems],
        ) from None
    except SQLAlchemyError as error:
        raise _failed(settings, error) from None
    finally:
        engine.dispose()


def _failed(settings: Settings, error: Exception) -> CliError:
    return local_problem("Database error", f"{safe_url(settings.database)}: {error}", EXIT_FAILED)
