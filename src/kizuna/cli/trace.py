"""`kizuna trace`: generate, convert and summarise traces.

`synth` writes a Philly-shaped trace from a seed, `convert` reads any known format and writes
Kizuna's canonical CSV or JSON Lines, `info` tells what a trace holds and how large a cluster
it needs. Each prints for people, or one JSON document with `--output json`.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kizuna.cli.output import (
    OutputFormat,
    ReaderOptions,
    job_count,
    reader_options,
    report_skipped,
    user_errors,
)
from kizuna.kernel.errors import InvalidRequest
from kizuna.kernel.units import HOUR, format_duration
from kizuna.planning.specs import busiest_tenants, nodes_for_load, offered_gpus
from kizuna.simulation.metrics import percentile
from kizuna.traces import FORMATS, BadRows, SynthSpec, Trace, read_trace, write_trace
from kizuna.traces.model import TraceRecord
from kizuna.traces.synth import records as synth_records

app: typer.Typer = typer.Typer(
    help="Generate, convert and summarise job traces.", no_args_is_help=True, add_completion=False
)

PROGRESS_FROM = 100_000
"""Synthetic traces at least this long show a progress bar."""
PROGRESS_EVERY = 10_000
SUFFIXES = (".csv", ".jsonl")
QUANTILES = (0.5, 0.9, 0.95, 0.99)
BUSIEST = 10
"""Tenants listed by `info`, the busiest first."""

FormatOption = Annotated[
    str | None,
    typer.Option("--format", help=f"Trace format ({', '.join(FORMATS)}); default: detected."),
]
OutputOption = Annotated[OutputFormat, typer.Option(help="Text for people, JSON for scripts.")]
OutOption = Annotated[Path, typer.Option("-o", "--out", help="The file to write: .csv or .jsonl.")]


@app.command()
def synth(
    out: OutOption,
    jobs: Annotated[int, typer.Option("-n", "--jobs", min=0, help="Jobs to generate.")] = 1_000,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same trace.")] = 0,
    load: Annotated[float, typer.Option(help="Offered GPU work over --gpus.")] = 0.8,
    gpus: Annotated[int, typer.Option(min=1, help="Cluster GPUs the load is offered to.")] = 1_024,
    rate: Annotated[
        float | None, typer.Option(help="Arrivals per hour instead of --load and --gpus.")
    ] = None,
    projects: Annotated[int, typer.Option(min=1, help="Projects (vc01, vc02, ...).")] = 15,
    gpu_type: Annotated[str | None, typer.Option(help="GPU type every job asks for.")] = None,
    max_gpus: Annotated[int | None, typer.Option(min=1, help="Largest gang.")] = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Write a synthetic trace shaped like Philly (gang sizes, durations, projects)."""
    spec = SynthSpec(jobs, seed, projects, load, gpus, rate, gpu_type, max_gpus)
    as_json = output is OutputFormat.JSON
    with user_errors():
        _check_suffix(out)
        made = synth_records(spec)
        with _progress(jobs, enabled=not as_json and jobs >= PROGRESS_FROM) as advance:
            written = write_trace(_counted(made, advance), out)
    offered = f"{rate:g} jobs per hour" if rate is not None else f"{load:.0%} of {gpus:,} GPUs"
    if as_json:
        document = {
            "path": str(out),
            "jobs": written,
            "seed": seed,
            "projects": projects,
            "load": None if rate is not None else load,
            "gpus": None if rate is not None else gpus,
            "rate": rate,
        }
        typer.echo(json.dumps(document, indent=2))
        return
    typer.echo(
        f"Wrote {job_count(written)} to {out} (seed {seed}, {projects} projects, {offered})."
    )


@app.command()
def convert(
    source: Annotated[Path, typer.Argument(help="The trace to read.", show_default=False)],
    out: OutOption,
    format: FormatOption = None,
    bad_rows: Annotated[
        BadRows, typer.Option(help="Skip bad rows (reported) or reject the trace.")
    ] = BadRows.REJECT,
    option: ReaderOptions = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Read a trace in any known format and write it as canonical CSV or JSON Lines."""
    options = reader_options(option)
    with user_errors():
        _check_suffix(out)
        trace = read_trace(source, format, on_bad=bad_rows, **options)
        report_skipped(trace, source.name)
        written = write_trace(trace, out)
    if output is OutputFormat.JSON:
        document = {
            "path": str(out),
            "jobs": written,
            "source": trace.source,
            "skipped": len(trace.problems),
            "filtered": trace.filtered,
        }
        typer.echo(json.dumps(document, indent=2))
        return
    typer.echo(f"Wrote {job_count(written)} read as {trace.source} to {out}.")


@app.command()
def info(
    source: Annotated[Path, typer.Argument(help="The trace to read.", show_default=False)],
    format: FormatOption = None,
    bad_rows: Annotated[
        BadRows, typer.Option(help="Skip bad rows (reported) or reject the trace.")
    ] = BadRows.REJECT,
    load: Annotated[float, typer.Option(help="Load to size a cluster for.")] = 0.8,
    gpus_per_node: Annotated[int, typer.Option(min=1, help="GPUs per node of that cluster.")] = 8,
    option: ReaderOptions = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """What a trace holds: jobs, tenants, span, GPU-hours, gangs, durations, cluster needed."""
    options = reader_options(option)
    with user_errors():
        trace = read_trace(source, format, on_bad=bad_rows, **options)
        report_skipped(trace, source.name)
        summary = TraceSummary.of(source.name, trace, load, gpus_per_node)
    if output is OutputFormat.JSON:
        typer.echo(json.dumps(summary.as_json(), indent=2))
        return
    summary.print(Console())


@dataclass(frozen=True, slots=True)
class Gang:
    """Jobs of one size, and the GPU-hours they ask for."""

    gpus: int
    jobs: int
    gpu_hours: float


@dataclass(frozen=True)
class TraceSummary:
    """What `info` tells about a trace; durations and spans in seconds."""

    name: str
    source: str
    jobs: int
    tenants: int
    busiest: tuple[tuple[str, int, float], ...]
    """(tenant, jobs, GPU-hours) of the busiest tenants."""
    span: float
    """From the first submit to the last."""
    gpu_hours: float
    gangs: tuple[Gang, ...]
    durations: dict[str, float]
    offered_gpus: float
    load: float
    gpus_per_node: int
    nodes: int
    """Nodes a cluster needs to run the trace at `load` (specs.py, P1-P2)."""
    skipped: int
    filtered: int

    @classmethod
    def of(cls, name: str, trace: Trace, load: float, gpus_per_node: int) -> TraceSummary:
        records = trace.records
        submits = [r.submit for r in records]
        return cls(
            name,
            trace.source,
            len(records),
            len({r.project for r in records}),
            _busiest(records),
            max(submits) - min(submits) if submits else 0.0,
            math.fsum(r.gpus * r.duration for r in records) / HOUR,
            _gangs(records),
            _durations([r.duration for r in records]),
            offered_gpus(records),
            load,
            gpus_per_node,
            nodes_for_load(records, load, gpus_per_node),
            len(trace.problems),
            trace.filtered,
        )

    @property
    def gpus_needed(self) -> int:
        return self.nodes * self.gpus_per_node

    def as_json(self) -> dict[str, Any]:
        return {
            "trace": self.name,
            "format": self.source,
            "jobs": self.jobs,
            "skipped": self.skipped,
            "filtered": self.filtered,
            "tenants": self.tenants,
            "busiest_tenants": [
                {"tenant": t, "jobs": n, "gpu_hours": round(h, 3)} for t, n, h in self.busiest
            ],
            "span": round(self.span, 3),
            "gpu_hours": round(self.gpu_hours, 3),
            "gpus_per_job": [
                {"gpus": g.gpus, "jobs": g.jobs, "gpu_hours": round(g.gpu_hours, 3)}
                for g in self.gangs
            ],
            "duration": {k: round(v, 3) for k, v in self.durations.items()},
            "offered_gpus": round(self.offered_gpus, 3),
            "cluster_for_load": {
                "load": self.load,
                "gpus_per_node": self.gpus_per_node,
                "nodes": self.nodes,
                "gpus": self.gpus_needed,
            },
        }

    def print(self, console: Console) -> None:
        console.print(
            f"{self.name} ({self.source}): {job_count(self.jobs)} from {self.tenants:,}"
            f" tenant{'s' * (self.tenants != 1)} over {format_duration(self.span)},"
            f" asking for {self.gpu_hours:,.0f} GPU-hours"
            f" ({self.offered_gpus:,.1f} GPUs busy on average).",
            markup=False,
            highlight=False,
        )
        console.print(self._gangs_table())
        console.print(self._durations_table())
        console.print(
            f"A cluster for {self.load:.0%} load: {self.gpus_needed:,} GPUs"
            f" ({self.nodes:,} nodes of {self.gpus_per_node} GPUs).",
            markup=False,
            highlight=False,
        )

    def _gangs_table(self) -> Table:
        table = Table(title="GPUs per job")
        for column in ("GPUs", "jobs", "share of jobs", "GPU-hours", "share of GPU-hours"):
            table.add_column(column, justify="right")
        for g in self.gangs:
            table.add_row(
                str(g.gpus),
                f"{g.jobs:,}",
                f"{g.jobs / self.jobs:.1%}",
                f"{g.gpu_hours:,.0f}",
                f"{g.gpu_hours / self.gpu_hours:.1%}" if self.gpu_hours else "-",
            )
        return table

    def _durations_table(self) -> Table:
        table = Table(title="Durations")
        for name in self.durations:
            table.add_column(name, justify="right")
        table.add_row(*(format_duration(v) for v in self.durations.values()))
        return table


def _busiest(records: Sequence[TraceRecord]) -> tuple[tuple[str, int, float], ...]:
    jobs = Counter(r.project for r in records)
    hours: dict[str, float] = {}
    for r in records:
        hours[r.project] = hours.get(r.project, 0.0) + r.gpus * r.duration / HOUR
    return tuple((t, jobs[t], hours[t]) for t in busiest_tenants(records)[:BUSIEST])


def _gangs(records: Sequence[TraceRecord]) -> tuple[Gang, ...]:
    jobs = Counter(r.gpus for r in records)
    hours: dict[int, float] = {}
    for r in records:
        hours[r.gpus] = hours.get(r.gpus, 0.0) + r.gpus * r.duration / HOUR
    return tuple(Gang(g, jobs[g], hours[g]) for g in sorted(jobs))


def _durations(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    out = {"mean": math.fsum(ordered) / len(ordered) if ordered else 0.0}
    out |= {f"p{round(q * 100)}": percentile(ordered, q) for q in QUANTILES}
    out["max"] = ordered[-1] if ordered else 0.0
    return out


def _check_suffix(path: Path) -> None:
    if path.suffix.lower() not in SUFFIXES:
        raise InvalidRequest(
            [f"cannot tell how to write {path}: name it .csv or .jsonl (got {path.suffix!r})"]
        )


def _counted(items: Iterable[TraceRecord], advance: Callable[[int], None]) -> Iterator[TraceRecord]:
    for count, item in enumerate(items, start=1):
        yield item
        if count % PROGRESS_EVERY == 0:
            advance(PROGRESS_EVERY)


@contextmanager
def _progress(total: int, *, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A progress bar over written jobs on stderr; the callable moves it on (nothing if off)."""
    columns = (
        TextColumn("writing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("jobs"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), disable=not enabled) as bar:
        task = bar.add_task("synth", total=total)
        yield lambda n: bar.advance(task, n)
        bar.update(task, completed=total)
