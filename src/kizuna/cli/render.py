"""Rich rendering of the demo: a progress bar while replaying, then tables for people."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kizuna.cli.demo import Busiest, DemoReport, Track
from kizuna.kernel.units import format_clock, format_duration, gpu_hours
from kizuna.scheduling.reasons import request
from kizuna.simulation import Metrics
from kizuna.simulation.replay import ProgressHook


@contextmanager
def replay_progress(console: Console, enabled: bool) -> Iterator[Track]:
    """A progress bar per replayed policy, counting finished jobs (nothing when disabled)."""
    columns = (
        TextColumn("replaying {task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("jobs finished"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=not enabled) as progress:

        def track(policy: str, total: int) -> ProgressHook:
            task = progress.add_task(policy, total=total)
            return lambda done, _total: progress.update(task, completed=done)

        yield track


def print_report(console: Console, report: DemoReport) -> None:
    console.print(_summary(report))
    console.print(_comparison(report))
    if report.busiest is not None:
        console.print(_pending(report.busiest))


def _summary(report: DemoReport) -> str:
    w = report.workload
    gpus = ", ".join(f"{n} {t}" for t, n in w.gpus().items())
    return (
        f"Cluster: {len(w.nodes)} nodes ({gpus} GPUs). {len(w.projects)} projects in one"
        f" cohort, quotas from award sizes. {len(w.jobs)} jobs generated with seed"
        f" {report.seed}."
    )


def _comparison(report: DemoReport) -> Table:
    table = Table(
        title="Policies compared on the same workload",
        caption="JCT: submit to end. wait: time pending. util: GPU-time held / capacity x"
        " makespan. lost: work since the last checkpoint, thrown away by preemptions.",
    )
    for name in ("policy", "done", "JCT mean", "JCT p95", "wait mean", "util", "preempted",
                 "lost GPU-h", "makespan"):  # fmt: skip
        table.add_column(name, justify="left" if name == "policy" else "right")
    for policy, result in zip(report.policies, report.results, strict=True):
        name = policy.name + ("" if policy.backfill else " (no backfill)")
        table.add_row(name, *_metric_cells(result.metrics))
    return table


def _metric_cells(m: Metrics) -> list[str]:
    return [
        f"{m.finished}/{m.jobs}",
        format_duration(m.jct_mean),
        format_duration(m.jct_p95),
        format_duration(m.wait_mean),
        f"{m.utilisation:.0%}",
        str(m.preemptions),
        f"{gpu_hours(m.lost_gpu_seconds):,.0f}",
        format_duration(m.makespan),
    ]


def _pending(busiest: Busiest) -> Table:
    codes = ", ".join(f"{code} {count}" for code, count in busiest.codes.items())
    table = Table(
        title=f"Why is it pending? {busiest.policy} at {format_clock(busiest.at)}"
        f" (+{format_duration(busiest.at)}), its busiest moment: {busiest.waiting} jobs waiting",
        caption=f"All waiting jobs by reason: {codes}. First {len(busiest.rows)} in policy order.",
    )
    for name in ("job", "project", "asks for", "waiting", "reason"):
        table.add_column(name, no_wrap=True)
    table.add_column("why", ratio=1)
    for row in busiest.rows:
        table.add_row(
            row.job.id,
            row.job.project,
            request(row.job),
            format_duration(row.waited),
            row.reason.code.value,
            row.reason.message,
        )
    return table
