"""What every command shares: the output formats, and how user errors and skipped rows
are told. Exit codes scripts can trust: 0 success, 2 bad input (as Click)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated

import typer

from kizuna.kernel.errors import InvalidRequest
from kizuna.traces import Trace

PROBLEMS_SHOWN = 5
"""Bad rows listed by line before the rest are counted."""


ReaderOptions = Annotated[
    list[str] | None,
    typer.Option(
        "--option",
        help="A reader option KEY=VALUE, repeatable: throughputs=PATH and gpu_type=k80 "
        "(gavel), job_table=PATH (pai).",
    ),
]


def reader_options(given: list[str] | None) -> dict[str, object]:
    """`--option KEY=VALUE` pairs as keyword arguments for `read_trace`."""
    out: dict[str, object] = {}
    for item in given or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="'--option'")
        out[key.strip()] = value.strip()
    return out


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn `InvalidRequest` into its problems on stderr and exit code 2."""
    try:
        yield
    except InvalidRequest as error:
        for problem in error.problems:
            typer.echo(f"Error: {problem}", err=True)
        raise typer.Exit(2) from None


def job_count(count: int) -> str:
    """ "1 job", "2,000 jobs"."""
    return f"{count:,} job{'s' * (count != 1)}"


def report_skipped(trace: Trace, name: str) -> None:
    """Tell stderr how many bad rows were skipped, and the first few with their lines."""
    if trace.problems:
        count = len(trace.problems)
        typer.echo(f"Skipped {count:,} bad row{'s' * (count != 1)} of {name}:", err=True)
        for problem in trace.problems[:PROBLEMS_SHOWN]:
            typer.echo(f"  {problem}", err=True)
        if count > PROBLEMS_SHOWN:
            typer.echo(f"  ... and {count - PROBLEMS_SHOWN:,} more", err=True)
    if trace.filtered:
        typer.echo(f"Left out {trace.filtered:,} CPU-only jobs of {name}.", err=True)
