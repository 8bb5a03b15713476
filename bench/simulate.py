"""Benchmark of the planning simulator (issue 3): replays of the Microsoft Philly trace.

Workloads:
- "philly": the whole trace (82,247 jobs) on a uniform cluster of 8-GPU V100 nodes sized for
  80 % offered load (`cluster_for_load`: ceil(GPU work / submit span / 0.8 / 8) nodes, and
  enough for the largest gang), awards from demand, fair-share with backfill and quotas
  (budgets off). The bar: at most 30 s and 2 GB, on one core.
- "sweep": fifo, fair-share, las and sjf on that cluster scaled by 0.8, 1 and 1.25.

Every replay runs in a process of its own, pinned to one core, so no run shares memory or
caches with another. The child measures reading the trace and building the workload, the
replay alone (`replay`), and the process's peak resident memory (`ru_maxrss`). `--limit N`
replays the first N jobs by submit time; `--jobs-synth N` a synthetic Philly-shaped trace
(seed 0) instead. Prints tables and writes every figure as JSON (default: under
bench/results/): `.venv/bin/python bench/simulate.py [--workload all] [--limit 3000]`.
The interpreter counts: the children run the one this runs on (its path is printed); the
replay ran 1.12-1.14x faster on Debian's optimised CPython than on pyenv's default build
(docs/benchmarks.md, seventh session, says how to measure on one).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import queue
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from kizuna.kernel.units import HOUR, format_duration
from kizuna.planning.specs import cluster_for_load
from kizuna.scheduling import make_policy
from kizuna.simulation.replay import replay
from kizuna.simulation.scenario import build
from kizuna.traces import SynthSpec, TraceRecord, read_trace, synthesize
from machine import facts  # bench/machine.py

ROOT = Path(__file__).resolve().parents[1]
PHILLY = ROOT.parent / "shared" / "data" / "traces" / "philly" / "philly.csv"
RESULTS = ROOT / "bench" / "results"
LOAD = 0.8
GPU_TYPE = "V100"
GPUS_PER_NODE = 8
POLICY = "fair-share"
SWEEP_POLICIES = ("fifo", "fair-share", "las", "sjf")
SWEEP_SCALES = (0.8, 1.0, 1.25)
BAR_SECONDS = 30.0
BAR_MB = 2000.0


@dataclass(frozen=True, slots=True)
class Run:
    """One replay a child process measures."""

    policy: str
    scale: float
    trace: str | None
    """The trace file; None: a synthetic trace of `synth` jobs."""
    synth: int | None
    limit: int | None
    core: int


def records(run: Run) -> tuple[TraceRecord, ...]:
    if run.trace is None:
        assert run.synth is not None
        found = synthesize(SynthSpec(jobs=run.synth)).records
    else:
        found = read_trace(Path(run.trace)).records
    return found[: run.limit] if run.limit is not None else found


def measure(run: Run) -> dict[str, Any]:
    """Replay `run` in this process, on its one core, and say what it cost and gave."""
    os.sched_setaffinity(0, {run.core})
    start = time.perf_counter()
    rows = records(run)
    base = cluster_for_load(rows, LOAD, GPU_TYPE, GPUS_PER_NODE)
    cluster = base if run.scale == 1 else base.scaled(run.scale)
    workload = build(rows, cluster)
    built = time.perf_counter() - start
    policy = make_policy(run.policy, backfill=True, quotas=True, budgets=False)
    gc.collect()
    start = time.perf_counter()
    result = replay(workload, policy)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    m = result.metrics
    return {
        **asdict(run),
        "trace_jobs": len(rows),
        "jobs": m.jobs,
        "refused": result.refused,
        "nodes": len(workload.nodes),
        "gpus": sum(workload.gpus().values()),
        "read_build_s": built,
        "replay_s": seconds,
        "cycles": result.cycles,
        "cycles_walked": result.walked,
        "jobs_per_s": m.jobs / seconds,
        "cycles_per_s": result.cycles / seconds,
        "peak_mb": peak_mb,
        "finished": m.finished,
        "utilisation": m.utilisation,
        "jct_mean_s": m.jct.mean,
        "jct_p95_s": m.jct.p95,
        "wait_mean_s": m.wait.mean,
        "jain": m.jain,
        "preemptions": m.preemptions,
        "lost_gpu_hours": m.lost_gpu_seconds / HOUR,
        "makespan_s": m.makespan,
    }


def in_child(run: Run) -> dict[str, Any]:
    """`measure(run)` in a fresh interpreter; its errors go to this process's stderr."""
    command = [sys.executable, __file__, "--child", json.dumps(asdict(run))]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"simulate.py: the {run.policy} x{run.scale:g} replay failed (see above)")
    figures: dict[str, Any] = json.loads(done.stdout)
    print(
        f"  {run.policy} x{run.scale:g} on core {run.core}: replay {figures['replay_s']:.1f} s, "
        f"{figures['peak_mb']:.0f} MB",
        file=sys.stderr,
        flush=True,
    )
    return figures


def in_children(runs: list[Run], cores: list[int]) -> list[dict[str, Any]]:
    """Each run in a process of its own, as many at once as there are `cores`."""
    free: queue.Queue[int] = queue.Queue()
    for core in cores:
        free.put(core)

    def on_a_free_core(run: Run) -> dict[str, Any]:
        core = free.get()
        try:
            return in_child(Run(run.policy, run.scale, run.trace, run.synth, run.limit, core))
        finally:
            free.put(core)

    with ThreadPoolExecutor(max_workers=len(cores)) as pool:
        return list(pool.map(on_a_free_core, runs))


def philly(base: Run, repeat: int, cores: list[int]) -> dict[str, Any]:
    """The fair-share replay at 80 % load, `repeat` times; medians of the times."""
    runs = in_children([base] * repeat, cores)
    summary = dict(runs[-1])
    for key in ("read_build_s", "replay_s", "peak_mb"):
        summary[key] = statistics.median(r[key] for r in runs)
    summary["jobs_per_s"] = summary["jobs"] / summary["replay_s"]
    summary["cycles_per_s"] = summary["cycles"] / summary["replay_s"]
    summary["replay_s_all"] = [r["replay_s"] for r in runs]
    summary["peak_mb_all"] = [r["peak_mb"] for r in runs]
    return summary


def sweep(base: Run, cores: list[int]) -> list[dict[str, Any]]:
    runs = [
        Run(policy, scale, base.trace, base.synth, base.limit, base.core)
        for scale in SWEEP_SCALES
        for policy in SWEEP_POLICIES
    ]
    return in_children(runs, cores)


def philly_table(row: dict[str, Any], repeat: int) -> Table:
    table = Table(
        title=f"{label(row)}, {row['policy']} + backfill + quotas, one core; median of {repeat}"
    )
    cells = {
        "jobs": f"{row['jobs']:,}",
        "cluster": f"{row['nodes']:,} x {GPUS_PER_NODE} {GPU_TYPE}",
        "read+build s": f"{row['read_build_s']:.1f}",
        "replay s": f"{row['replay_s']:.1f}",
        "cycles": f"{row['cycles']:,}",
        "walked": f"{row['cycles_walked']:,}",
        "jobs/s": f"{row['jobs_per_s']:,.0f}",
        "cycles/s": f"{row['cycles_per_s']:,.0f}",
        "peak MB": f"{row['peak_mb']:,.0f}",
        "util": f"{row['utilisation']:.1%}",
        "JCT mean": format_duration(row["jct_mean_s"]),
        "wait mean": format_duration(row["wait_mean_s"]),
        "preempted": f"{row['preemptions']:,}",
    }
    for column in cells:
        table.add_column(column, justify="right")
    table.add_row(*cells.values())
    return table


def sweep_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"{label(rows[0])}: 4 policies x 3 cluster sizes, one core each")
    columns = ("policy", "scale", "GPUs", "replay s", "peak MB", "JCT mean", "p95")
    for column in (*columns, "wait mean", "util", "Jain", "preempted", "refused"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for r in sorted(rows, key=lambda r: (SWEEP_POLICIES.index(r["policy"]), r["scale"])):
        table.add_row(
            r["policy"],
            f"x{r['scale']:g}",
            f"{r['gpus']:,}",
            f"{r['replay_s']:.1f}",
            f"{r['peak_mb']:,.0f}",
            format_duration(r["jct_mean_s"]),
            format_duration(r["jct_p95_s"]),
            format_duration(r["wait_mean_s"]),
            f"{r['utilisation']:.1%}",
            f"{r['jain']:.3f}",
            f"{r['preemptions']:,}",
            f"{r['refused']:,}",
        )
    return table


def label(row: dict[str, Any]) -> str:
    source = Path(row["trace"]).name if row["trace"] else "synthetic (seed 0)"
    return f"{source}, {row['trace_jobs']:,} jobs, {LOAD:.0%} load at x1"


def bar(row: dict[str, Any]) -> str:
    met = row["replay_s"] <= BAR_SECONDS and row["peak_mb"] <= BAR_MB
    return (
        f"Bar (<= {BAR_SECONDS:.0f} s and <= {BAR_MB:,.0f} MB, one core): "
        f"{'met' if met else 'NOT met'} ({row['replay_s']:.1f} s, {row['peak_mb']:,.0f} MB)"
    )


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=("philly", "sweep", "all"), default="philly")
    parser.add_argument("--trace", type=Path, default=PHILLY, help="a Philly-format trace")
    parser.add_argument("--limit", type=int, help="replay only the first N jobs")
    parser.add_argument("--jobs-synth", type=int, help="a synthetic trace of N jobs instead")
    parser.add_argument("--repeat", type=int, default=1, help="runs of the philly row")
    parser.add_argument("--core", type=int, help="the core to pin to; default: the last")
    parser.add_argument(
        "--workers", type=int, default=1, help="runs at once, each on a core of its own"
    )
    parser.add_argument("--json", type=Path, help="where to write the results")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name in ("limit", "jobs_synth", "repeat", "workers"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1 (got {value})")
    return args


def main() -> None:
    args = options()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if args.child:
        print(json.dumps(measure(Run(**json.loads(args.child)))))
        return
    if args.jobs_synth is None and not args.trace.is_file():
        sys.exit(
            f"simulate.py: no trace at {args.trace}; the Philly trace lives in "
            "../shared/data/traces/philly/ (name another with --trace, or use --jobs-synth N)"
        )
    allowed = sorted(os.sched_getaffinity(0))
    if args.core is not None and args.core not in allowed:
        sys.exit(f"simulate.py: core {args.core} is not one of this process's: {allowed}")
    if args.workers > len(allowed):
        sys.exit(f"simulate.py: --workers {args.workers}, but only {len(allowed)} cores")
    cores = [args.core] if args.core is not None else allowed[-args.workers :]
    trace = None if args.jobs_synth is not None else str(args.trace.resolve())
    base = Run(POLICY, 1.0, trace, args.jobs_synth, args.limit, cores[0])

    about = facts()
    console = Console(width=160)
    console.print(
        f"{about['cpu']}, {about['cores']} cores ({about['machine']}); {about['python']} "
        f"({about['python_executable']}); {about['date']}",
        markup=False,
    )
    shown = {k: v for k, v in vars(args).items() if k != "child"}
    results: dict[str, Any] = {"machine": about, "args": shown | {"cores": cores}}
    if args.workload in ("philly", "all"):
        row = philly(base, args.repeat, cores)
        results["philly"] = row
        console.print(philly_table(row, args.repeat))
        if row["trace"] == str(PHILLY.resolve()) and row["limit"] is None:
            console.print(bar(row), markup=False)
    if args.workload in ("sweep", "all"):
        rows = sweep(base, cores)
        results["sweep"] = rows
        console.print(sweep_table(rows))

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = args.json or RESULTS / f"simulate-{args.workload}-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    console.print(f"Results: {path}", markup=False, highlight=False)


if __name__ == "__main__":
    main()
