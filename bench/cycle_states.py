"""A steadier measure of the scheduling core than a whole replay: cycles on captured states.

A whole-trace replay moves by up to 15 % between runs on a shared 2-vCPU machine, more than
most single speed-ups. This benchmark replays the Philly trace (as `simulate.py` does: ~80 %
load, fair-share + backfill + quotas) up to chosen cycles, and at each takes the snapshot the
cycle saw, derives its occupancy and queue afresh (what `run_cycle` does) and times
`cycle_on` on them `--repeat` times: the minimum per state is what the core needs, with the
machine's hiccups left out. Prints each state and the sum of minimums; `--json F` writes them.

Compare two codes on the very same states by running it twice, once with the other code
first on the path (the states are the same: the replay is deterministic):
`PYTHONPATH=<checkout>/src .venv/bin/python bench/cycle_states.py` and
`.venv/bin/python bench/cycle_states.py` (default: every 1,500th cycle from 3,000 to
60,000; `--first/--last/--step` choose others).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kizuna.kernel.units import Instant
from kizuna.planning.specs import cluster_for_load
from kizuna.scheduling import CycleResult, Snapshot, make_policy
from kizuna.scheduling.cycle import cycle_on
from kizuna.scheduling.occupancy import Occupancy
from kizuna.scheduling.queue import Queue
from kizuna.simulation.replay import replay
from kizuna.simulation.scenario import build
from kizuna.traces import read_trace
from machine import facts  # bench/machine.py

ROOT = Path(__file__).resolve().parents[1]
PHILLY = ROOT.parent / "shared" / "data" / "traces" / "philly" / "philly.csv"


class _Enough(Exception):
    """Raised by the hook once the last chosen state was timed: the rest of the replay is
    not needed."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, default=PHILLY)
    parser.add_argument("--first", type=int, default=3_000)
    parser.add_argument("--last", type=int, default=60_000)
    parser.add_argument("--step", type=int, default=1_500)
    parser.add_argument("--repeat", type=int, default=60)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not args.trace.exists():
        sys.exit(f"cycle_states.py: no trace at {args.trace}")
    if not (0 < args.first <= args.last) or args.step < 1 or args.repeat < 1:
        sys.exit("cycle_states.py: need 0 < --first <= --last, --step >= 1, --repeat >= 1")
    chosen = set(range(args.first, args.last + 1, args.step))
    rows = read_trace(args.trace).records
    workload = build(rows, cluster_for_load(rows, 0.8, "V100", 8))
    policy = make_policy("fair-share", backfill=True, quotas=True, budgets=False)
    states: list[dict[str, float]] = []
    seen = 0

    def on_cycle(now: Instant, snapshot: Snapshot, result: CycleResult) -> None:
        nonlocal seen
        seen += 1
        if seen not in chosen:
            return
        occupancy, queue = Occupancy.of(snapshot), Queue.of(policy, snapshot, now)
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            cycle_on(occupancy, queue, policy, now)
            times.append(time.perf_counter() - start)
        states.append(
            {
                "cycle": seen,
                "pending": len(snapshot.pending),
                "running": len(snapshot.running),
                "min_us": min(times) * 1e6,
            }
        )
        if seen >= max(chosen):
            raise _Enough

    with contextlib.suppress(_Enough):
        replay(workload, policy, on_cycle=on_cycle)
    table = Table(title=f"cycle_on, min of {args.repeat}")
    for name in ("cycle", "pending", "running", "min us"):
        table.add_column(name, justify="right")
    for s in states:
        cells = (f"{s['cycle']:,}", f"{s['pending']:,}", f"{s['running']:,}", f"{s['min_us']:.1f}")
        table.add_row(*cells)
    total = sum(s["min_us"] for s in states)
    about = facts()
    console = Console()
    console.print(
        f"{about['cpu']}, {about['cores']} cores ({about['machine']}); {about['python']}; "
        f"{about['date']}"
    )
    console.print(table)
    console.print(f"sum of minimums: {total:,.1f} us")
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": about, "states": states, "sum_us": total}))


if __name__ == "__main__":
    main()
