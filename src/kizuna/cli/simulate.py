"""`kizuna simulate`: replay a trace under several policies and cluster sizes, and compare.

The command reads the trace, the cluster and the awards, runs a `Study` with a progress bar
on stderr, prints the comparison on stdout (a Rich table, or one JSON document) and writes
the HTML report when asked. Notes for people (bad rows skipped, jobs refused) go to stderr.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from kizuna.cli.output import (
    OutputFormat,
    ReaderOptions,
    job_count,
    reader_options,
    report_skipped,
    user_errors,
)
from kizuna.cli.render import replay_progress
from kizuna.kernel.errors import InvalidRequest, UnknownName
from kizuna.kernel.units import HOUR, Seconds, format_duration, parse_duration
from kizuna.planning import Row, Study, StudyResult
from kizuna.planning.specs import busiest_tenants, cluster_for_load, load_awards, load_cluster
from kizuna.planning.study import Progress
from kizuna.scheduling import POLICIES, Policy, make_policy
from kizuna.simulation.awards import AwardsSpec
from kizuna.simulation.cluster import ClusterSpec
from kizuna.simulation.replay import ProgressHook, ReplayOptions
from kizuna.simulation.scenario import JobDefaults
from kizuna.traces import FORMATS, BadRows, read_trace
from kizuna.traces.model import TraceRecord

PROGRESS_STEPS = 200
"""A progress bar is redrawn at most this many times per run."""
DEFAULT_GPU_TYPE = "V100"
"""The GPU type of a sized cluster when the trace names none (Philly's and Helios' GPUs)."""


def simulate(
    trace: Annotated[
        Path, typer.Argument(help="The trace: canonical CSV/JSONL or a public format.")
    ],
    format: Annotated[
        str | None,
        typer.Option("--format", help=f"Trace format ({', '.join(FORMATS)}); default: detected."),
    ] = None,
    cluster: Annotated[
        Path | None, typer.Option("--cluster", help="Cluster spec (YAML).", show_default=False)
    ] = None,
    nodes: Annotated[
        int | None, typer.Option(min=1, help="A uniform cluster of this many nodes instead.")
    ] = None,
    gpu_type: Annotated[
        str | None,
        typer.Option(help="GPU type of a uniform cluster; default: the trace's most common."),
    ] = None,
    gpus_per_node: Annotated[
        int, typer.Option(min=1, help="GPUs per node of a uniform cluster.")
    ] = 8,
    load: Annotated[
        float,
        typer.Option(help="Without --cluster or --nodes: size the cluster for this offered load."),
    ] = 0.8,
    awards: Annotated[
        Path | None,
        typer.Option(
            help="Awards spec (YAML) or Helios capacity table (.csv); default: by demand."
        ),
    ] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option(help=f"Policy to replay, repeatable; default: all ({', '.join(POLICIES)})."),
    ] = None,
    scale: Annotated[
        list[float] | None,
        typer.Option(help="Cluster size factor, repeatable: a sweep; default: 1."),
    ] = None,
    backfill: Annotated[bool, typer.Option(help="EASY backfill.")] = True,
    quotas: Annotated[bool, typer.Option(help="Enforce quotas and reclaim borrowed GPUs.")] = True,
    budgets: Annotated[bool, typer.Option(help="Enforce the awards' GPU-hour budgets.")] = False,
    checkpoint_interval: Annotated[str, typer.Option(help="How often jobs checkpoint.")] = "30m",
    restart_overhead: Annotated[
        str, typer.Option(help="Time a restarted job spends reloading its checkpoint.")
    ] = "60s",
    min_runtime: Annotated[
        str,
        typer.Option(
            help="A job is not preempted before it ran this long (below the checkpoint "
            "interval, a borrower can be reclaimed again and again before saving anything)."
        ),
    ] = "10m",
    grace: Annotated[
        str, typer.Option(help="Time between the preemption signal and the kill.")
    ] = "60s",
    walltime_factor: Annotated[
        float, typer.Option(help="Walltime = (runtime + restart overhead) x this, where unknown.")
    ] = 1.0,
    bad_rows: Annotated[
        BadRows, typer.Option(help="Skip bad trace rows (reported) or reject the trace.")
    ] = BadRows.REJECT,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Replay only the first N jobs (by submit time).")
    ] = None,
    option: ReaderOptions = None,
    awards_day: Annotated[
        str | None,
        typer.Option(help="With a capacity table as --awards: the day (YYYY-MM-DD) to read."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Replays to run side by side, each in a process of its own (a sweep on a "
            "many-core machine; the wall seconds shown then share the machine).",
        ),
    ] = 1,
    report: Annotated[
        Path | None, typer.Option(help="Write a self-contained HTML report here.")
    ] = None,
    output: Annotated[OutputFormat, typer.Option(help="Tables for people, JSON for scripts.")] = (
        OutputFormat.TABLE
    ),
) -> None:
    """Replay a trace through the real scheduler under each policy and cluster size.

    Prints a comparison (JCT, wait, slowdown, utilisation, fairness, with the limits no
    schedule can beat) and writes an HTML report with --report.
    """
    interval = _duration(checkpoint_interval, "--checkpoint-interval")
    overhead = _duration(restart_overhead, "--restart-overhead")
    policies = _policies(policy or list(POLICIES), backfill, quotas, budgets)
    options = reader_options(option)
    if cluster is not None and nodes is not None:
        raise typer.BadParameter("give --cluster or --nodes, not both", param_hint="'--nodes'")
    with user_errors():
        if report is not None and not report.parent.is_dir():
            raise InvalidRequest([f"cannot write {report}: there is no folder {report.parent}"])
        read = read_trace(trace, format, on_bad=bad_rows, **options)
        report_skipped(read, trace.name)
        if limit is not None:
            read = replace(read, records=read.records[:limit])
        spec = _cluster(read.records, cluster, nodes, gpu_type, gpus_per_node, load)
        awarded = _awards(awards, read.records, spec, awards_day)
        study = Study(
            trace.name,
            read,
            spec,
            tuple(policies),
            awarded,
            _awards_label(awards, awards_day),
            tuple(scale or (1.0,)),
            JobDefaults(
                walltime_factor=walltime_factor,
                restart_overhead=overhead,
                grace=_duration(grace, "--grace"),
                min_runtime=_duration(min_runtime, "--min-runtime"),
            ),
            ReplayOptions(checkpoint_interval=interval, restart_overhead=overhead),
        )
        as_json = output is OutputFormat.JSON
        with replay_progress(Console(stderr=True), enabled=not as_json) as track:
            result = study.run(_throttled(track), workers)
        _note_refused(result)
        written = None
        if report is not None:
            from kizuna.planning.report import write_report  # noqa: PLC0415  (matplotlib: slow)

            written = write_report(result, report)
    if as_json:
        document = {**result.as_json(), "report": str(written) if written else None}
        typer.echo(json.dumps(document, indent=2))
        return
    console = Console()
    console.print(comparison(result, console))
    if written is not None:
        console.print(f"Report: {written}", markup=False, highlight=False)


COLUMNS: dict[str, Callable[[Row], str]] = {
    "policy": lambda r: r.label,
    "GPUs": lambda r: f"{r.total_gpus:,}",
    "done": lambda r: f"{r.metrics.finished:,}/{r.metrics.jobs:,}",
    "JCT mean": lambda r: format_duration(r.metrics.jct.mean),
    "p50": lambda r: format_duration(r.metrics.jct.p50),
    "p95": lambda r: format_duration(r.metrics.jct.p95),
    "p99": lambda r: format_duration(r.metrics.jct.p99),
    "wait mean": lambda r: format_duration(r.metrics.wait.mean),
    "slowdown": lambda r: f"{r.metrics.slowdown.mean:.2f}",
    "util": lambda r: f"{r.metrics.utilisation:.0%}",
    "preempted": lambda r: f"{r.metrics.preemptions:,}",
    "lost GPU-h": lambda r: f"{r.metrics.lost_gpu_seconds / HOUR:,.1f}",
    "Jain": lambda r: f"{r.metrics.jain:.3f}",
    "makespan": lambda r: format_duration(r.metrics.makespan),
}
"""The comparison's columns: header -> cell of a row."""
NARROW = ("policy", "GPUs", "JCT mean", "p95", "wait mean", "util", "Jain", "makespan")
"""The columns kept when the terminal is too narrow for all of them."""


def comparison(result: StudyResult, console: Console) -> Table:
    """The comparison table: one row per replay, the limits in the caption; the columns that
    fit the console's width."""
    table = _comparison(result, tuple(COLUMNS))
    unbounded = console.options.update_width(10_000)
    if Measurement.get(console, unbounded, table).maximum <= console.width:
        return table
    return _comparison(result, NARROW)


def _comparison(result: StudyResult, columns: Sequence[str]) -> Table:
    """Rows sharing their switches are labelled by policy alone, the switches in the title."""
    switches = {(r.backfill, r.quotas, r.budgets) for r in result.rows}
    shared = _switches(*switches.pop()) if len(switches) == 1 else ""
    table = Table(
        title=f"{result.study.name}: {job_count(len(result.study.trace.records))}{shared}",
        caption=_limits(result),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for name in columns:
        table.add_column(name, justify="left" if name == "policy" else "right")
    for row in result.rows:
        cells = [COLUMNS[name](row) for name in columns]
        if shared and columns[0] == "policy":
            cells[0] = row.policy
        table.add_row(*cells)
    return table


def _switches(backfill: bool, quotas: bool, budgets: bool) -> str:
    words = [
        "backfill" if backfill else "no backfill",
        "quotas" if quotas else "no quotas",
        "budgets" if budgets else "no budgets",
    ]
    return ", " + ", ".join(words)


def _limits(result: StudyResult) -> str:
    lines = ["Limits no schedule can beat:"]
    for scale, runs in result.by_scale():
        row, m = runs[0][0], runs[0][0].metrics
        lines.append(
            f"  {row.total_gpus:,} GPUs (x{scale:g}): mean JCT {format_duration(m.jct_mean_bound)}"
            f" if every job started on arrival; makespan {format_duration(m.makespan_bound)}"
        )
    return "\n".join(lines)


def _note_refused(result: StudyResult) -> None:
    for scale, runs in result.by_scale():
        row = runs[0][0]
        if row.refused:
            typer.echo(
                f"Note: not replayed at x{scale:g} ({row.total_gpus:,} GPUs):"
                f" {job_count(row.refused)} larger than the cluster ever is.",
                err=True,
            )
    for row in result.rows:
        left = row.metrics.jobs - row.metrics.finished
        if left:
            typer.echo(
                f"Note: {row.label} at x{row.scale:g}: {job_count(left)} never finished"
                " (still waiting when nothing else could run).",
                err=True,
            )


def _cluster(
    records: Sequence[TraceRecord],
    path: Path | None,
    nodes: int | None,
    gpu_type: str | None,
    gpus_per_node: int,
    load: float,
) -> ClusterSpec:
    if path is not None:
        return load_cluster(path)
    gpu = gpu_type or _common_type(records)
    if nodes is not None:
        return ClusterSpec.uniform(nodes, gpu, gpus_per_node)
    return cluster_for_load(records, load, gpu, gpus_per_node)


def _common_type(records: Sequence[TraceRecord]) -> str:
    types = Counter(r.gpu_type for r in records if r.gpu_type)
    return types.most_common(1)[0][0] if types else DEFAULT_GPU_TYPE


def _awards(
    path: Path | None, records: Sequence[TraceRecord], cluster: ClusterSpec, day: str | None
) -> AwardsSpec | None:
    if path is None:
        if day is not None:
            raise InvalidRequest(["--awards-day needs a capacity table as --awards"])
        return None
    return load_awards(path, busiest_tenants(records), cluster.gpus(), day)


def _awards_label(path: Path | None, day: str | None) -> str:
    if path is None:
        return "from demand: each tenant a project, quotas in proportion to its GPU-hours"
    if path.suffix.lower() == ".csv":
        on = day or "its last day"
        return f"{path.name}: Helios capacity table on {on}, quotas scaled to the cluster"
    return path.name


def _policies(names: list[str], backfill: bool, quotas: bool, budgets: bool) -> list[Policy]:
    try:
        return [
            make_policy(name, backfill=backfill, quotas=quotas, budgets=budgets)
            for name in dict.fromkeys(names)
        ]
    except UnknownName as error:
        raise typer.BadParameter(str(error), param_hint="'--policy'") from None


def _duration(text: str, flag: str) -> Seconds:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint=f"'{flag}'") from None


def _throttled(track: Progress) -> Progress:
    """The same progress, redrawn at most `PROGRESS_STEPS` times per run."""
    return lambda label, total: _Throttle(track(label, total), total)


class _Throttle:
    """Passes progress on when it moved by a `PROGRESS_STEPS`-th of the jobs, or finished."""

    def __init__(self, hook: ProgressHook, total: int) -> None:
        self.hook = hook
        self.step = max(1, total // PROGRESS_STEPS)
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        if done - self.shown >= self.step or (done == total and done != self.shown):
            self.shown = done
            self.hook(done, total)
