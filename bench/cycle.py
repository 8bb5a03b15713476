"""Benchmark of one scheduling cycle at national-cluster scale (issue 2).

1,250 nodes x 8 GPUs (10,000 GPUs, 4 GPU types, 150 NVLink domains), 8,000 running and
50,000 pending jobs from 200 projects. Measures
- a full cycle that considers every pending job, backfill, quotas and budgets included,
  for each registered policy;
- the cycle after one running job ends (the live loop's most frequent event).
Prints a table; run with `.venv/bin/python bench/cycle.py [--repeat N]`.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))

from workload import NOW, Scale, snapshot  # noqa: E402

from kizuna.kernel.units import Instant  # noqa: E402
from kizuna.scheduling import POLICIES, CycleResult, Snapshot, make_policy, run_cycle  # noqa: E402


def timed(fn: Callable[[], CycleResult], repeat: int) -> tuple[list[float], CycleResult]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    assert result is not None
    return times, result


def one_ended(snap: Snapshot) -> Snapshot:
    """The snapshot a moment later, when the running job that ends first has ended."""
    first = min(snap.running, key=lambda r: (r.start + r.job.walltime, r.job.id))
    return dataclasses.replace(snap, running=tuple(r for r in snap.running if r is not first))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pending", type=int, default=Scale().pending)
    args = parser.parse_args()
    scale = dataclasses.replace(Scale(), pending=args.pending)
    snap = snapshot(scale)
    later = one_ended(snap)
    console = Console()
    table = Table(
        title=f"run_cycle at {scale.nodes} nodes, {len(snap.running)} running, "
        f"{len(snap.pending)} pending ({platform.python_implementation()} "
        f"{platform.python_version()}, {platform.machine()})"
    )
    for column in (
        "policy",
        "cycle",
        "median ms",
        "min ms",
        "admitted",
        "preempted",
        "top reasons",
    ):
        table.add_column(column)
    for name in POLICIES:
        policy = make_policy(name, backfill=True, quotas=True, budgets=True)
        for label, s, at in (("full", snap, NOW), ("after one job ends", later, Instant(NOW + 1))):
            times, result = timed(lambda s=s, at=at: run_cycle(s, policy, at), args.repeat)
            codes = Counter(r.code.value for r in result.reasons.values()).most_common(3)
            table.add_row(
                name,
                label,
                f"{statistics.median(times) * 1000:.0f}",
                f"{min(times) * 1000:.0f}",
                str(len(result.admissions)),
                str(len(result.preemptions)),
                ", ".join(f"{c} {n}" for c, n in codes),
            )
    console.print(table)


if __name__ == "__main__":
    main()
