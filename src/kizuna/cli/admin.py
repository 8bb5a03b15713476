"""`kizuna server`, `kizuna admin bootstrap|migrate`, `kizuna login`, `kizuna whoami`.

`server` and `admin` work on the service's own machine (they read `Settings.database`);
`login` and `whoami` talk to the service over HTTP like every other verb.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Annotated, Any

import typer

from kizuna.cli.client import EXIT_FAILED, Client, CliError, local_problem, segment
from kizuna.cli.output import OutputFormat
from kizuna.cli.present import (
    Output,
    emit,
    load_settings,
    note,
    reporting,
    say,
    service,
    show,
    table,
)
from kizuna.config import Settings, save_client

admin = typer.Typer(
    help="Work on the service's own database: the first admin, migrations.",
    no_args_is_help=True,
    add_completion=False,
)


def server(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65_535, help="Port to listen on (default: 8600).")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="sqlite:///PATH or postgresql://... (default: $KIZUNA_HOME/kizuna.db)."),
    ] = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Run the Kizuna service (the HTTP API) until interrupted."""
    # the web stack and the database layer load only for the verbs that use them: they
    # would double every other verb's start-up time
    import uvicorn  # noqa: PLC0415
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError  # noqa: PLC0415

    from kizuna.api.app import create_app  # noqa: PLC0415
    from kizuna.cli.database import safe_url  # noqa: PLC0415

    with reporting(output):
        settings = load_settings()
    changes: dict[str, Any] = {}
    if host is not None:
        changes["host"] = host
    if port is not None:
        changes["port"] = port
    if database_url is not None:
        changes["database_url"] = database_url
    settings = replace(settings, **changes)
    url = f"http://{settings.host}:{settings.port}"
    database = safe_url(settings.database)
    if output is OutputFormat.JSON:
        emit({"url": url, "api": f"{url}/api/v1", "database": database, "home": str(settings.home)})
    else:
        note(f"Kizuna serving {url}/api/v1 (docs: {url}/api/v1/docs), database {database}")
    with reporting(output):
        try:
            app = create_app(settings)
        except (SQLAlchemyError, ArgumentError, OSError, ValueError) as error:
            raise local_problem(
                "Cannot start", f"cannot start the service on {database}: {error}", EXIT_FAILED
            ) from None
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")


@admin.command()
def migrate(output: Output = OutputFormat.TABLE) -> None:
    """Bring the database ($KIZUNA_DATABASE_URL or $KIZUNA_HOME/kizuna.db) to the newest
    schema; does nothing when it is there already."""
    from kizuna.cli import database as db  # noqa: PLC0415 (the database layer, only here)

    with reporting(output):
        settings = load_settings()
        db.migrate(settings)
    database = db.safe_url(settings.database)
    if output is OutputFormat.JSON:
        emit({"database": database, "migrated": True})
    else:
        say(f"Database {database} has the newest schema.")


@admin.command()
def bootstrap(
    email: Annotated[str, typer.Option(help="The first program admin's email.")],
    name: Annotated[str, typer.Option(help="Their name (default: the email).")] = "",
    organization: Annotated[
        str, typer.Option(help="Name of the program office organization.")
    ] = "program-office",
    save: Annotated[
        bool, typer.Option("--save/--no-save", help="Save the URL and token to the config file.")
    ] = True,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Create the program office, its first program admin and their token (runs once, on the
    service's machine). The token is shown once."""
    from kizuna.cli import database as db  # noqa: PLC0415 (the database layer, only here)

    with reporting(output):
        settings = load_settings()
        person_id, person_email, secret = db.first_admin(settings, email, name, organization)
        saved = save_client(settings, settings.service_url, secret) if save else None
    if output is OutputFormat.JSON:
        emit(
            {
                "person_id": person_id,
                "email": person_email,
                "organization": organization,
                "role": "program-admin",
                "token": secret,
                "url": settings.service_url,
                "config_file": None if saved is None else str(saved),
            }
        )
        return
    say(f"Created program admin {person_email} ({person_id}) of organization {organization}.")
    say(f"Token (shown once, store it now): {secret}")
    if saved is not None:
        say(f"Saved the URL {settings.service_url} and the token to {saved}.")


def _save(settings: Settings, url: str, token: str) -> str:
    path = save_client(settings, url, token)
    overridden = [v for v in ("KIZUNA_URL", "KIZUNA_TOKEN") if os.environ.get(v)]
    if overridden:
        note(f"Note: {' and '.join(overridden)} in the environment override the saved values.")
    return str(path)


def login(
    token: Annotated[str | None, typer.Option(help="An API token to save.")] = None,
    email: Annotated[
        str | None, typer.Option(help="Sign in with email and password (prompted).")
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="The service's URL (default: the configured one).")
    ] = None,
    token_name: Annotated[str, typer.Option(help="Name of the token made by --email.")] = "login",
    output: Output = OutputFormat.TABLE,
) -> None:
    """Sign in: check the token (or get one for your email and password) and save it, with
    the URL, to $KIZUNA_HOME/config.toml."""
    if (token is None) == (email is None):
        raise typer.BadParameter("give exactly one of --token and --email", param_hint="'--token'")
    with reporting(output):
        settings = load_settings()
        target = (url or settings.service_url).strip().rstrip("/")
        if email is not None:
            password = typer.prompt("Password", hide_input=True, err=True)
            with Client(target) as anonymous:
                made = anonymous.post(
                    "/login",
                    {"email": email, "password": password, "token_name": token_name},
                    retry=False,
                )
            token = str(made["secret"])
        assert token is not None
        with Client(target, token) as client:
            me = client.get("/whoami")
        path = _save(settings, target, token)
    if output is OutputFormat.JSON:
        emit(
            {"url": target, "email": me["email"], "person_id": me["person_id"], "config_file": path}
        )
        return
    say(f"Signed in to {target} as {me['email']}; saved to {path}.")


def passwd(output: Output = OutputFormat.TABLE) -> None:
    """Set your password (12 characters or more), for `kizuna login --email`."""
    password = typer.prompt("New password", hide_input=True, confirmation_prompt=True, err=True)
    with service(output) as client:
        client.request("PUT", "/password", body={"password": password})
    if output is OutputFormat.JSON:
        emit({"password_set": True})
    else:
        say("Password set.")


def whoami(output: Output = OutputFormat.TABLE) -> None:
    """Who the saved (or $KIZUNA_TOKEN) token signs in as, and their roles."""
    with service(output) as client:
        me = client.get("/whoami")
        roles = []
        for org_id, role in me.get("roles", {}).items():
            try:
                org = client.get(f"/organizations/{segment(org_id)}")["name"]
            except CliError:
                org = org_id
            roles.append({"organization_id": org_id, "organization": org, "role": role})
    if output is OutputFormat.JSON:
        emit({**me, "url": client.url, "memberships": roles})
        return
    say(f"{me['email']} ({me['person_id']}) at {client.url}, token {me.get('token_id') or '-'}")
    if roles:
        show(table(["ORGANIZATION", "ROLE"], [(r["organization"], r["role"]) for r in roles]))
    else:
        say("No memberships.")
