"""What the control-plane verbs share: settings, the client, errors on stderr with their exit
codes, JSON for scripts, plain Slurm-like tables for people, and names for ids."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kizuna.cli.client import EXIT_USAGE, Client, CliError, Json, local_problem, segment
from kizuna.cli.output import OutputFormat
from kizuna.config import Settings
from kizuna.kernel.errors import InvalidRequest

WIDE = 200
"""Console width when stdout is not a terminal: tables never wrap in a pipe or a file."""

Output = Annotated[
    OutputFormat,
    typer.Option("--output", help="table: for people; json: one JSON document for scripts."),
]

HINTS = {
    401: "Sign in: `kizuna login --token TOKEN` or `kizuna login --email EMAIL`.",
}


def console(stderr: bool = False) -> Console:
    found = Console(stderr=stderr)
    if not found.is_terminal:
        return Console(stderr=stderr, width=WIDE, soft_wrap=True)
    return found


def load_settings() -> Settings:
    """The settings of defaults < config file < KIZUNA_* environment; exit 2 if malformed."""
    try:
        return Settings.load()
    except InvalidRequest as error:
        raise local_problem("Bad configuration", str(error), EXIT_USAGE) from None


@contextmanager
def reporting(output: OutputFormat) -> Iterator[None]:
    """Turn a `CliError` into its message (or its problem JSON) and its exit code."""
    try:
        yield
    except CliError as error:
        print_problem(error, output)
        raise typer.Exit(error.exit_code) from None


@contextmanager
def service(output: OutputFormat, token: str | None = None) -> Iterator[Client]:
    """The client of the configured service, inside `reporting`."""
    with reporting(output):
        settings = load_settings()
        with Client.of(settings, token) as client:
            yield client


def print_problem(error: CliError, output: OutputFormat) -> None:
    """JSON mode: the problem document on stdout. Otherwise its detail, and each of its
    `errors`, in red on stderr."""
    if output is OutputFormat.JSON:
        emit(error.problem)
        return
    err = console(stderr=True)
    detail = str(error.problem.get("detail") or error.problem.get("title") or "failed")
    err.print(f"[bold red]Error:[/] [red]{escape(detail)}[/]")
    items = error.problem.get("errors")
    lines = [
        f"{item['pointer']}: {item['detail']}" if item.get("pointer") else str(item["detail"])
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict) and item.get("detail")
    ]
    if lines != [detail]:
        for line in lines:
            err.print(f"[red]  - {escape(line)}[/]")
    hint = HINTS.get(error.status or 0)
    if hint:
        err.print(escape(hint))


def emit(document: Json) -> None:
    """One JSON document on stdout."""
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False))


def say(text: str) -> None:
    """A line for people on stdout (no markup)."""
    typer.echo(text)


def note(text: str) -> None:
    """A remark for people on stderr."""
    console(stderr=True).print(escape(text), style="yellow")


def table(
    columns: Sequence[str], rows: Iterable[Sequence[object]], title: str | None = None
) -> Table:
    """A plain table like squeue's: a bold header, no borders."""
    found = Table(
        *columns, box=None, pad_edge=False, header_style="bold", title=title, title_justify="left"
    )
    for row in rows:
        found.add_row(*("-" if v is None or v == "" else escape(str(v)) for v in row))
    return found


def show(*renderables: Any) -> None:
    """Rich renderables on stdout; in a pipe or a file, as plain lines without trailing
    blanks (what `grep`, `awk` and a pasted example want)."""
    out = console()
    for item in renderables:
        if out.is_terminal:
            out.print(item)
            continue
        with out.capture() as captured:
            out.print(item)
        for line in captured.get().splitlines():
            typer.echo(line.rstrip())


def fields(pairs: Iterable[tuple[str, object]]) -> None:
    """`Key=Value` lines, like `scontrol show`."""
    for key, value in pairs:
        say(f"{key}={'-' if value is None or value == '' else value}")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def when(value: str | None) -> str:
    """An API time as Slurm writes one: 2026-11-27T10:00:00 (UTC)."""
    found = parse_time(value)
    return "-" if found is None else found.strftime("%Y-%m-%dT%H:%M:%S")


def day(value: str | None) -> str:
    found = parse_time(value)
    return "-" if found is None else found.strftime("%Y-%m-%d")


def slurm_time(seconds: int) -> str:
    """A time limit as squeue writes one: 45:00, 2:00:00, 1-00:00:00."""
    days, rest = divmod(max(int(seconds), 0), 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def hostlist(names: Iterable[str]) -> str:
    """Slurm's compressed host list: h100-[0-3,7],a100-1."""
    groups: dict[tuple[str, int], list[int]] = {}
    order: list[tuple[str, int] | str] = []
    for name in names:
        match = re.fullmatch(r"(.*?)(\d+)", name)
        if match is None:
            order.append(name)
            continue
        prefix, digits = match.groups()
        width = len(digits) if digits.startswith("0") and len(digits) > 1 else 0
        key = (prefix, width)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(int(digits))
    parts: list[str] = []
    for item in order:
        if isinstance(item, str):
            parts.append(item)
            continue
        prefix, width = item
        numbers = sorted(set(groups[item]))
        if len(numbers) == 1:
            parts.append(f"{prefix}{numbers[0]:0{width}d}")
            continue
        runs: list[str] = []
        start = prev = numbers[0]
        for number in [*numbers[1:], None]:
            if number is not None and number == prev + 1:
                prev = number
                continue
            runs.append(
                f"{start:0{width}d}" if start == prev else f"{start:0{width}d}-{prev:0{width}d}"
            )
            if number is not None:
                start = prev = number
        parts.append(f"{prefix}[{','.join(runs)}]")
    return ",".join(parts)


class Names:
    """Names for the ids the API answers with (organizations and projects the caller sees),
    fetched once, on first use."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._orgs: dict[str, str] | None = None
        self._projects: dict[str, tuple[str, str]] | None = None

    def organization(self, org_id: str) -> str:
        if self._orgs is None:
            self._orgs = {o["id"]: o["name"] for o in self._client.pages("/organizations")}
        found = self._orgs.get(org_id)
        if found is None:
            try:
                found = str(self._client.get(f"/organizations/{segment(org_id)}")["name"])
            except CliError:
                found = org_id
            self._orgs[org_id] = found
        return found

    def project(self, project_id: str) -> str:
        """`org/name` of a project."""
        if self._projects is None:
            self._projects = {
                p["id"]: (p["organization_id"], p["name"]) for p in self._client.pages("/projects")
            }
        found = self._projects.get(project_id)
        if found is None:
            return project_id
        org_id, name = found
        return f"{self.organization(org_id)}/{name}"
