"""`kizuna balance|usage`: what awards have left and what was used, as sshare and sreport
show it (the API's `/balances` and `/usage`, ADR 0023)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer

from kizuna.cli.client import Json
from kizuna.cli.output import OutputFormat
from kizuna.cli.present import Output, day, emit, service, show, table


class Group(StrEnum):
    """What `kizuna usage --by` groups by (the API's names, with a hyphen)."""

    PROJECT = "project"
    ORGANIZATION = "organization"
    GPU_TYPE = "gpu-type"
    JOB = "job"
    AWARD = "award"

    @property
    def api(self) -> str:
        return self.value.replace("-", "_")


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class ReportFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def hours(value: float) -> str:
    """GPU-hours for people: 1,234.500."""
    return f"{value:,.3f}"


def instant(text: str | None, option: str) -> str | None:
    """--since/--until: a date (midnight UTC) or an RFC 3339 instant, as RFC 3339 in UTC."""
    if text is None:
        return None
    try:
        found = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a date (2026-03-01) or a time (2026-03-01T12:00:00Z)",
            param_hint=f"'{option}'",
        ) from None
    if found.tzinfo is None:
        found = found.replace(tzinfo=UTC)
    return found.astimezone(UTC).isoformat().replace("+00:00", "Z")


def balance(
    project: Annotated[
        str | None, typer.Option("--project", "-A", help="Only this project's awards.")
    ] = None,
    org: Annotated[str | None, typer.Option("--org", help="Only this organization's.")] = None,
    every: Annotated[bool, typer.Option("--all", "-a", help="Also awards that ended.")] = False,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Each award's GPU-hours: granted, used, held by running jobs and available, with the
    burn rate of the last 7 days and the day the award runs out at that rate."""
    params: dict[str, Any] = {"project": project, "organization": org}
    if every:
        params["include_ended"] = "true"
    with service(output) as client:
        items = client.get("/balances", params)["items"]
    if output is OutputFormat.JSON:
        emit(items)
        return
    show(table(BALANCE_COLUMNS, [_balance_row(b) for b in items]))


BALANCE_COLUMNS = [
    "AWARD",
    "PROJECT",
    "GPU_TYPE",
    "GRANTED",
    "USED",
    "HELD",
    "AVAILABLE",
    "BURN/DAY",
    "RUNS_OUT",
    "ENDS",
]


def _balance_row(b: Json) -> tuple[object, ...]:
    burn = b["burn_gpu_hours_per_day"]
    return (
        b["award_id"],
        b["project"],
        b["gpu_type"],
        hours(b["granted_gpu_hours"]),
        hours(b["charged_gpu_hours"]),
        hours(b["held_gpu_hours"]),
        hours(b["available_gpu_hours"]),
        hours(burn) if burn else "-",
        day(b["runs_out_at"]) if b["runs_out_at"] else "never",
        day(b["ends_at"]),
    )


def usage(
    by: Annotated[
        list[Group] | None,
        typer.Option("--by", help="Group by this, repeatable (default: project)."),
    ] = None,
    period: Annotated[
        Period | None, typer.Option("--period", help="Also by the day, week or month.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Runs ended at or after: 2026-03-01 or an RFC 3339 time.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Runs ended before (as --since).")] = None,
    project: Annotated[
        str | None, typer.Option("--project", "-A", help="Only this project's usage.")
    ] = None,
    org: Annotated[str | None, typer.Option("--org", help="Only this organization's.")] = None,
    output: Annotated[
        ReportFormat,
        typer.Option("--output", help="table for people; json or csv for scripts."),
    ] = ReportFormat.TABLE,
) -> None:
    """GPU-hours used, like sreport: by project, organization, GPU type, job or award, and
    by day, week or month, from the usage records of the runs that ended."""
    groups = list(dict.fromkeys(by or [Group.PROJECT]))
    params: dict[str, Any] = {
        "by": [g.api for g in groups],
        "period": None if period is None else period.value,
        "since": instant(since, "--since"),
        "until": instant(until, "--until"),
        "project": project,
        "organization": org,
    }
    errors = OutputFormat.JSON if output is ReportFormat.JSON else OutputFormat.TABLE
    with service(errors) as client:
        if output is ReportFormat.CSV:
            typer.echo(client.raw("/usage", {**params, "format": "csv"}, "text/csv").text, nl=False)
            return
        lines = client.get("/usage", params)["items"]
    if output is ReportFormat.JSON:
        emit(lines)
        return
    columns = [g.api.upper() for g in groups] + (["PERIOD"] if period else [])
    rows = [
        (
            *(line["group"][g.api] for g in groups),
            *([line["period"]] if period else []),
            line["runs"],
            hours(line["gpu_hours"]),
        )
        for line in lines
    ]
    total = sum(line["gpu_ms"] for line in lines) / 3_600_000
    title = f"Usage: {hours(total)} GPU-hours in {sum(line['runs'] for line in lines)} runs"
    show(table([*columns, "RUNS", "GPU_HOURS"], rows, title=title))
