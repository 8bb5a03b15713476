"""Benchmark of launching gangs (issue 6): time from admission to all ranks running, for
gangs of 2, 8 and 32 ranks (logical GPUs), the local executor against the Ray backend.

Each run submits one gang whose ranks each print `time.time()` once, flushed, and exit
(`python -c "import time; print(time.time(), flush=True)"`). The start is the instant just
before `submit` (the live loop calls it right after admitting the job); "all ranks running"
is the latest of the ranks' printed instants. Once the gang has ended (`status(key).state`
not RUNNING, polled every `--poll` seconds) each rank's first line is read through
`executor.logs(key, rank)`. Also measured: how long `submit` itself blocked.

Ranks are placed as the scheduling core places a gang on an idle cluster of 16-GPU nodes
(scheduling/placement.py: best fit on one node when it fits): 2 and 8 ranks on one node (n1),
32 ranks as 16 + 16 (n1, n2), one GPU each.

- local: `LocalExecutor` in a temporary folder (Rank nodes are only labels there); measured
  first, before the Ray cluster starts.
- ray: a real Ray cluster on this machine (tests/multinode/cluster.py: a head and two workers
  of 16 logical GPUs, each node in a network namespace of its own; needs root), driven through
  `RayExecutor` over Ray Client. Ray starts a worker process for each actor (one per node of
  the gang). Between runs the benchmark waits until Ray reports every GPU free again, then
  `--pause` seconds.

Each (backend, size) runs `--repeat` times; the table gives the median and the max. Prints a
table and writes every run's figures as JSON under bench/results/:
`.venv/bin/python bench/ray_launch.py [--sizes 2 8 32] [--repeat 5] [--backends local ray]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from kizuna.execution.backend import Launch, Rank, RunState
from kizuna.execution.local import LocalExecutor
from machine import facts  # bench/machine.py

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
NODES = ("n1", "n2")
GPUS_PER_NODE = 16
PRINT_TIME = "import time; print(time.time(), flush=True)"
COMMAND = (sys.executable, "-c", PRINT_TIME)


@dataclass(frozen=True)
class Measured:
    """One gang launched once."""

    backend: str
    ranks: int
    run: int
    to_all_running: float
    """Seconds from just before `submit` to the last rank's printed instant."""
    to_first_running: float
    """... to the first rank's printed instant."""
    submit_blocked: float
    """Seconds `submit` took to return."""


@dataclass(frozen=True)
class Summary:
    backend: str
    ranks: int
    runs: int
    median_s: float
    max_s: float
    submit_blocked_median_s: float


def placement(size: int) -> tuple[Rank, ...]:
    """As the core places a gang of `size` 1-GPU ranks on idle 16-GPU nodes: one node when
    it fits, else whole nodes."""
    assert size <= GPUS_PER_NODE * len(NODES), f"{size} ranks do not fit on 2 x 16 GPUs"
    return tuple(
        Rank(NODES[index // GPUS_PER_NODE], (index % GPUS_PER_NODE,)) for index in range(size)
    )


def launch_once(
    executor: Any, backend: str, key: str, size: int, run: int, folder: Path, poll: float
) -> Measured:
    launch = Launch(key, COMMAND, placement(size), folder / "ckpt" / key)
    before = time.time()
    executor.submit(launch)
    returned = time.time()
    deadline = time.monotonic() + 300
    while (status := executor.status(key)).state is RunState.RUNNING:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{key} still running after 300 s")
        time.sleep(poll)
    assert status.state is RunState.SUCCEEDED, status
    printed = []
    for index in range(size):
        lines = executor.logs(key, index).read_text().splitlines()
        assert lines, f"{key}: rank {index} printed nothing"
        printed.append(float(lines[0]))
    return Measured(
        backend,
        size,
        run,
        max(printed) - before,
        min(printed) - before,
        returned - before,
    )


def run_local(sizes: list[int], repeat: int, poll: float, stamp: str) -> list[Measured]:
    out = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        executor = LocalExecutor(folder / "runs")
        for size in sizes:
            for run in range(repeat):
                key = f"local-{stamp}-{size}-{run}"
                out.append(launch_once(executor, "local", key, size, run, folder, poll))
                time.sleep(0.2)
    return out


def run_ray(
    sizes: list[int],
    repeat: int,
    poll: float,
    stamp: str,
    worker_cpus: int,
    pause: float,
    placement_timeout: float,
) -> list[Measured]:
    sys.path.insert(0, str(ROOT / "tests"))
    from multinode.cluster import RayCluster, available  # noqa: PLC0415 - tests/ on the path

    why = available()
    if why is not None:
        raise SystemExit(f"the Ray rows need a namespaced Ray cluster: {why}")
    import ray  # noqa: PLC0415 - Ray is an optional extra

    from kizuna.execution import ray_backend  # noqa: PLC0415

    out = []
    keys = []
    with RayCluster() as cluster, tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for node in NODES:
            cluster.add_worker(node, GPUS_PER_NODE, cpus=worker_cpus)
        executor = ray_backend.RayExecutor(
            cluster.address, folder / "runs", placement_timeout=placement_timeout
        )
        try:
            executor.nodes()  # connects and learns the nodes' selectors, as the loop does
            for size in sizes:
                for run in range(repeat):
                    all_free(ray, GPUS_PER_NODE * len(NODES))
                    time.sleep(pause)
                    key = f"ray-{stamp}-{size}-{run}"
                    keys.append(key)
                    out.append(launch_once(executor, "ray", key, size, run, folder, poll))
        finally:
            ray_backend.disconnect()
    for key in keys:  # the ranks' logs on the nodes (one filesystem here)
        shutil.rmtree(Path(tempfile.gettempdir()) / "kizuna-ranks" / key, ignore_errors=True)
    return out


def all_free(ray: Any, gpus: int, timeout: float = 60.0) -> None:
    """Waits until Ray reports all `gpus` free: the previous gang's bundles are released."""
    deadline = time.monotonic() + timeout
    while ray.available_resources().get("GPU", 0) < gpus:
        if time.monotonic() > deadline:
            raise TimeoutError(f"Ray still holds GPUs after {timeout:.0f} s")
        time.sleep(0.2)


def summarize(results: list[Measured]) -> list[Summary]:
    groups: dict[tuple[str, int], list[Measured]] = {}
    for r in results:
        groups.setdefault((r.backend, r.ranks), []).append(r)
    return [
        Summary(
            backend,
            ranks,
            len(runs),
            statistics.median(r.to_all_running for r in runs),
            max(r.to_all_running for r in runs),
            statistics.median(r.submit_blocked for r in runs),
        )
        for (backend, ranks), runs in groups.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 8, 32], help="ranks")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backends", nargs="+", choices=["local", "ray"], default=["local", "ray"])
    parser.add_argument("--poll", type=float, default=0.25, help="status every (s)")
    parser.add_argument("--pause", type=float, default=1.0, help="idle before a Ray run (s)")
    parser.add_argument("--worker-cpus", type=int, default=16, help="CPUs per Ray worker node")
    parser.add_argument("--placement-timeout", type=float, default=120.0)
    args = parser.parse_args()
    began = datetime.now(UTC)
    load_before = os.getloadavg()
    stamp = f"{began:%Y%m%dT%H%M%S}"
    results: list[Measured] = []
    if "local" in args.backends:
        results += run_local(args.sizes, args.repeat, args.poll, stamp)
    if "ray" in args.backends:
        results += run_ray(
            args.sizes,
            args.repeat,
            args.poll,
            stamp,
            args.worker_cpus,
            args.pause,
            args.placement_timeout,
        )
    summaries = summarize(results)
    console = Console()
    console.print(table(summaries))
    for backend, size in dict.fromkeys((r.backend, r.ranks) for r in results):
        runs = [
            f"{r.to_all_running:.2f}" for r in results if (r.backend, r.ranks) == (backend, size)
        ]
        console.print(f"{backend} {size} ranks, each run in order, s: {' '.join(runs)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"ray_launch-{stamp}.json"
    document = {
        "machine": facts(),
        "began": began.isoformat(),
        "ended": datetime.now(UTC).isoformat(),
        "load_average_1_5_15": {"before": load_before, "after": os.getloadavg()},
        "settings": vars(args),
        "summary": [asdict(s) for s in summaries],
        "runs": [asdict(r) for r in results],
    }
    out.write_text(json.dumps(document, indent=2))
    console.print(f"written {out.relative_to(ROOT)}")


def table(summaries: list[Summary]) -> Table:
    title = "Admission to all ranks running (submit to the last rank's first output)"
    table = Table(title=title)
    for column in ("backend", "ranks", "runs", "median s", "max s", "submit blocked median s"):
        table.add_column(column, justify="right")
    for s in summaries:
        table.add_row(
            s.backend,
            str(s.ranks),
            str(s.runs),
            f"{s.median_s:.2f}",
            f"{s.max_s:.2f}",
            f"{s.submit_blocked_median_s:.2f}",
        )
    return table


if __name__ == "__main__":
    main()
