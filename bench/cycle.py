"""Benchmark of the scheduling cycle at national-cluster scale (issue 2).

1,250 nodes x 8 GPUs (10,000 GPUs, 4 GPU types, 150 NVLink domains), 8,000 running and
50,000 pending jobs from 200 projects in 4 cohorts, with quotas and budgets. For each
registered policy, with backfill, quotas and budgets on, it times
- "first": a full cycle on the generated snapshot (many projects are owed quota: reclaims);
- "settled": a full cycle once the live loop has carried out the first one's decisions;
- "after one job ends": the cycle a `Scheduler` runs when the first running job ends, after
  it ran the settled cycle (what the live loop does on every event);
- "first, quotas off": the first cycle again with quotas and budgets off, so that every
  pending job passes them and GPUs alone hold jobs back;
each as decisions alone, and with all 50,000 reasons rendered. Every cycle considers every
pending job. Garbage is collected before each timed run, not during it by choice: the
collector still runs when the timed cycle's own allocations trigger it. Prints a table:
`.venv/bin/python bench/cycle.py [--repeat N]`.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import platform
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))

from kizuna.kernel.units import Instant
from kizuna.scheduling import (
    POLICIES,
    CycleResult,
    Policy,
    Scheduler,
    Snapshot,
    make_policy,
    run_cycle,
)
from kizuna.scheduling.testing import end, settle
from workload import NOW, Scale, snapshot


def timed(
    fn: Callable[[], CycleResult], repeat: int
) -> tuple[list[float], list[float], CycleResult]:
    """Seconds for the decisions, and for decisions plus every reason, over `repeat` runs."""
    decided, explained, result = [], [], None
    for _ in range(repeat):
        result = None  # freeing the last run's result is not this run's cost,
        gc.collect()  # nor is collecting its garbage
        start = time.perf_counter()
        result = fn()
        decided.append(time.perf_counter() - start)
        len(dict(result.reasons.items()))
        explained.append(time.perf_counter() - start)
    assert result is not None
    return decided, explained, result


Times = tuple[list[float], list[float], CycleResult]


def after_one_ends(
    policy: Policy, settled: Snapshot, later: Snapshot, at: Instant, repeat: int
) -> Times:
    """A Scheduler that ran the settled cycle runs the next one, after one job ended."""
    decided, explained, result = [], [], None
    for _ in range(repeat):
        result = None
        scheduler = Scheduler(policy)
        scheduler.cycle(settled, NOW)
        gc.collect()
        start = time.perf_counter()
        result = scheduler.cycle(later, at)
        decided.append(time.perf_counter() - start)
        len(dict(result.reasons.items()))
        explained.append(time.perf_counter() - start)
    assert result is not None
    return decided, explained, result


def first_to_end(snap: Snapshot) -> Snapshot:
    running = min(snap.running, key=lambda r: (r.start + r.job.walltime, r.job.id))
    return end(snap, running.job.id)


Row = tuple[str, str, float, float, int, int, str]
"""policy, cycle, decisions ms, with all reasons ms, admitted, preempted, top reasons."""


def row(name: str, label: str, times: Times) -> Row:
    decided, explained, result = times
    codes = Counter(r.code.value for r in result.reasons.values()).most_common(2)
    return (
        name,
        label,
        statistics.median(decided) * 1000,
        statistics.median(explained) * 1000,
        len(result.admissions),
        len(result.preemptions),
        ", ".join(f"{c} {n}" for c, n in codes),
    )


def measure(name: str, scale: Scale, repeat: int) -> list[Row]:
    """The three cycles of one policy, on a snapshot generated afresh."""
    first = snapshot(scale)
    policy = make_policy(name, backfill=True, quotas=True, budgets=True)
    rows = [row(name, "first", timed(partial(run_cycle, first, policy, NOW), repeat))]
    settled = settle(first, run_cycle(first, policy, NOW), NOW)
    later, at = first_to_end(settled), Instant(NOW + 1)
    rows.append(row(name, "settled", timed(partial(run_cycle, settled, policy, NOW), repeat)))
    event = after_one_ends(policy, settled, later, at, repeat)
    rows.append(row(name, "after one job ends", event))
    check = run_cycle(later, policy, at)  # the Scheduler must agree with a fresh cycle
    assert check.admissions == event[2].admissions
    assert check.preemptions == event[2].preemptions
    gpus_only = make_policy(name, backfill=True, quotas=False, budgets=False)
    rows.append(
        row(name, "first, quotas off", timed(partial(run_cycle, first, gpus_only, NOW), repeat))
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pending", type=int, default=Scale().pending)
    parser.add_argument("--policy", choices=sorted(POLICIES), help="measure one policy, here")
    parser.add_argument("--json", action="store_true", help="print rows as JSON")
    args = parser.parse_args()
    scale = dataclasses.replace(Scale(), pending=args.pending)
    if args.policy:
        rows = measure(args.policy, scale, args.repeat)
    else:  # each policy in a process of its own: one's garbage is not the next one's cost
        rows = []
        for name in POLICIES:
            command = [sys.executable, __file__, "--policy", name, "--json"]
            command += ["--repeat", str(args.repeat), "--pending", str(args.pending)]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            rows += [tuple(r) for r in json.loads(done.stdout)]
    if args.json:
        print(json.dumps(rows))
        return
    table = Table(
        title=f"run_cycle: {scale.nodes} nodes x 8 GPUs, {scale.running} running, "
        f"{scale.pending} pending; median of {args.repeat} "
        f"({platform.python_implementation()} {platform.python_version()}, "
        f"{platform.machine()})"
    )
    columns = ("policy", "cycle", "decisions ms", "+ all reasons ms", "admitted", "preempted")
    for column in (*columns, "top reasons"):
        table.add_column(column)
    for name, label, decided, explained, admitted, preempted, reasons in rows:
        table.add_row(
            name,
            label,
            f"{decided:.0f}",
            f"{explained:.0f}",
            str(admitted),
            str(preempted),
            reasons,
        )
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
