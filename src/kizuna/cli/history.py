"""`kizuna jobs export`: the finished jobs as a canonical trace (like `sacct --parsable`), the
file `kizuna simulate` reads back (services/history.py, H1-H5)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from kizuna.cli.client import EXIT_FAILED, Client, _answer, local_problem
from kizuna.cli.output import OutputFormat
from kizuna.cli.present import Output, emit, say, service

jobs = typer.Typer(
    help="Job history: export finished jobs for the simulator.", no_args_is_help=True
)
PATH = "/history/jobs"


class TraceFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


def instant(value: str | None) -> str | None:
    """--since/--until: an ISO date or date and time; without a zone, UTC."""
    if value is None:
        return None
    try:
        found = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date (2026-11-27) or date and time (2026-11-27T10:00:00Z)"
        ) from None
    return (found if found.tzinfo else found.replace(tzinfo=UTC)).isoformat()


@jobs.command()
def export(
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write here (default: standard output)."),
    ] = None,
    format: Annotated[
        TraceFormat | None,
        typer.Option("--format", help="csv or jsonl (default: the file's suffix, else csv)."),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", "-S", help="Jobs submitted at or after this.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", "-E", help="Jobs submitted before this.")
    ] = None,
    project: Annotated[
        str | None, typer.Option("--project", "-A", help="Only this project's jobs.")
    ] = None,
    org: Annotated[str | None, typer.Option("--org", help="Only this organization's jobs.")] = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Finished jobs in Kizuna's canonical trace format (id, project, submit, GPUs, GPU type,
    duration, walltime, priority), for `kizuna simulate FILE`. Jobs that never
    started are left out; a preempted job's duration is the sum of its runs."""
    chosen = format or _format_of(out)
    params = {
        "format": chosen.value,
        "since": instant(since),
        "until": instant(until),
        "project": project,
        "organization": org,
    }
    with service(output) as client:
        body = download(client, params)
        if out is None:
            typer.echo(body, nl=False)
            return
        try:
            out.write_text(body, encoding="utf-8")
        except OSError as error:
            raise local_problem(
                "Cannot write", f"cannot write {out}: {error.strerror or error}", EXIT_FAILED
            ) from None
    rows = body.count("\n") - (1 if chosen is TraceFormat.CSV else 0)
    if output is OutputFormat.JSON:
        emit({"file": str(out), "format": chosen.value, "jobs": rows})
    else:
        say(f"Exported {rows} jobs to {out}")


def download(client: Client, params: dict[str, str | None]) -> str:
    """The trace text; a problem answer becomes the client's usual `CliError`."""
    import httpx  # noqa: PLC0415 (loaded by the verbs that talk to the service only)

    query = {k: v for k, v in params.items() if v is not None}
    try:
        response = client._http.get(PATH, params=query, headers={"Accept": "*/*"})
    except (httpx.TransportError, httpx.InvalidURL) as error:
        raise client._unreachable(error) from None
    if not response.is_success:
        _answer("GET", PATH, response)
    return response.text


def _format_of(out: Path | None) -> TraceFormat:
    if out is not None and out.suffix.lower() == ".jsonl":
        return TraceFormat.JSONL
    return TraceFormat.CSV
