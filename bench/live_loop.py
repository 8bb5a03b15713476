"""Benchmark of the live loop (issue 5): scheduling latency and throughput.

For each store (SQLite in a temporary home; PostgreSQL on 127.0.0.1:5432 in a fresh database)
it starts the service in this process (`create_app`, the loop's thread ticking every
`--every` seconds, the local executor, Starlette's TestClient as the client), seeds an
organization, a project with a large award and `--nodes` nodes of 8 virtual GPUs, then:

(a) latency: `--latency-jobs` jobs, each submitted alone on the idle cluster (the previous one
    finished), a 1-GPU `date +%s.%N`; from the API's 201 to the run's `started_at` (the
    executor's start) and to the rank's first output (the instant `date` printed);
(b) throughput: `--jobs` jobs of `/bin/true`, 1 GPU each, submitted back to back; jobs/s
    from the first submission to the last run's end. Baseline, measured in the same run: the
    local executor alone starting the same commands, as many at once as the cluster has
    GPUs, polled as the loop polls them: what running the processes costs without the loop.

Prints a table and writes the figures as JSON under bench/results/:
`.venv/bin/python bench/live_loop.py [--store sqlite --store postgresql] [--jobs 1000]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from kizuna.api.app import create_app
from kizuna.api.testing import AWARD_WINDOW, Service
from kizuna.config import Settings
from kizuna.execution.backend import Launch, Rank, RunState
from kizuna.execution.local import LocalExecutor
from kizuna.services.bootstrap import bootstrap
from kizuna.store.engine import reading, writing
from kizuna.store.tables import Job, Run
from machine import facts  # bench/machine.py
from stores import database, drop  # bench/stores.py

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
GPU_TYPE = "H100"
GPUS_PER_NODE = 8
PROJECT = "bench/loop"


@dataclass(frozen=True)
class Latency:
    store: str
    jobs: int
    start_p50_ms: float
    start_p95_ms: float
    output_p50_ms: float
    output_p95_ms: float


@dataclass(frozen=True)
class Throughput:
    store: str
    """The store, or "executor alone" for the baseline."""
    jobs: int
    gpus: int
    seconds: float
    per_second: float
    submit_seconds: float
    """Time spent submitting (0 for the baseline)."""


@contextmanager
def serving(store: str, nodes: int, every: float) -> Iterator[Service]:
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        url = database(store, home)
        try:
            app = create_app(Settings(home=home, database_url=url, loop_every=every))
            with writing(app.state.kizuna.sessions) as session:
                _, secret = bootstrap(
                    session, "bench@office.example", "Bench", "program-office", datetime.now(UTC)
                )
            with TestClient(app) as client:
                service = Service(client, secret)
                seed(service, nodes)
                yield service
            app.state.kizuna.engine.dispose()
        finally:
            drop(url)


def seed(service: Service, nodes: int) -> None:
    org, name = PROJECT.split("/")
    service.org(org)
    service.project(org, name)
    body = {
        "project": PROJECT,
        "gpu_type": GPU_TYPE,
        "gpu_hours": 1_000_000,
        "nominal_gpus": nodes * GPUS_PER_NODE,
        **AWARD_WINDOW,
    }
    service.ok("POST", "/awards", json=body)
    for n in range(nodes):
        service.node(f"n{n}", GPU_TYPE, GPUS_PER_NODE)


def submit(service: Service, command: list[str]) -> int:
    made = service.job(PROJECT, 1, command=command, gpu_type=GPU_TYPE, walltime=600)
    return int(made["id"])


def sessions(service: Service) -> Any:
    app: Any = service.client.app
    return app.state.kizuna.sessions


def latency(store: str, jobs: int, every: float) -> Latency:
    """(a)."""
    to_start: list[float] = []
    to_output: list[float] = []
    with serving(store, 1, every) as service:
        app: Any = service.client.app
        runs_dir = Path(app.state.kizuna.settings.runs_dir)
        for _ in range(jobs):
            job_id = submit(service, ["date", "+%s.%N"])
            acknowledged = time.time()
            started = wait_ended(service, [job_id], 30.0)[job_id]
            printed = float((runs_dir / f"job-{job_id}-1" / "rank-0.log").read_text().split()[0])
            to_start.append(started - acknowledged)
            to_output.append(printed - acknowledged)
    return Latency(
        store,
        jobs,
        median_ms(to_start),
        p95_ms(to_start),
        median_ms(to_output),
        p95_ms(to_output),
    )


def wait_ended(service: Service, ids: list[int], timeout: float) -> dict[int, float]:
    """Waits until every job of `ids` has ended; each job's run start, in epoch seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with reading(sessions(service)) as session:
            open_jobs = session.scalar(
                select(func.count()).where(Job.id.in_(ids), Job.ended_at.is_(None))
            )
            if not open_jobs:
                rows = session.execute(
                    select(Run.job_id, Run.started_at).where(Run.job_id.in_(ids))
                )
                return {job: at.timestamp() for job, at in rows if at is not None}
        if time.monotonic() > deadline:
            raise TimeoutError(f"{open_jobs} jobs still open after {timeout:.0f} s")
        time.sleep(0.005)


def throughput(store: str, jobs: int, nodes: int, every: float) -> Throughput:
    """(b) through the whole loop."""
    with serving(store, nodes, every) as service:
        first = time.time()
        ids = [submit(service, ["/bin/true"]) for _ in range(jobs)]
        submitted = time.time() - first
        wait_ended(service, ids, 1800.0)
        with reading(sessions(service)) as session:
            last = session.scalar(select(func.max(Run.ended_at)).where(Run.job_id.in_(ids)))
            failed = session.scalar(
                select(func.count()).where(Job.id.in_(ids), Job.state != "succeeded")
            )
        assert last is not None and not failed, f"{failed} jobs did not succeed"
        seconds = last.timestamp() - first
    return Throughput(store, jobs, nodes * GPUS_PER_NODE, seconds, jobs / seconds, submitted)


def executor_alone(jobs: int, gpus: int, every: float) -> Throughput:
    """(b)'s baseline: the local executor starting the same commands, `gpus` at a time."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        executor = LocalExecutor(root / "runs")
        waiting = list(range(jobs))
        running: set[str] = set()
        first = time.time()
        last = first
        while waiting or running:
            while waiting and len(running) < gpus:
                n = waiting.pop(0)
                key = f"job-{n}-1"
                launch = Launch(key, ("/bin/true",), (Rank("n0", (0,)),), root / "ckpt" / key)
                executor.submit(launch)
                running.add(key)
            for key in sorted(running):
                status = executor.status(key)
                if status.state is not RunState.RUNNING:
                    assert status.state is RunState.SUCCEEDED, status
                    running.discard(key)
                    last = max(last, status.ended_at or time.time())
            time.sleep(every)
    seconds = last - first
    return Throughput("executor alone", jobs, gpus, seconds, jobs / seconds, 0.0)


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def p95_ms(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--jobs", type=int, default=1000, help="throughput jobs")
    parser.add_argument("--latency-jobs", type=int, default=50)
    parser.add_argument("--nodes", type=int, default=8, help="nodes of 8 virtual GPUs")
    parser.add_argument("--every", type=float, default=0.25, help="the loop's timer (s)")
    args = parser.parse_args()
    stores = args.store or ["sqlite", "postgresql"]
    latencies = [latency(store, args.latency_jobs, args.every) for store in stores]
    rates = [throughput(store, args.jobs, args.nodes, args.every) for store in stores]
    rates.append(executor_alone(args.jobs, args.nodes * GPUS_PER_NODE, args.every))
    console = Console()
    console.print(latency_table(latencies))
    console.print(throughput_table(rates))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"live_loop-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    document = {
        "machine": facts(),
        "loop_every": args.every,
        "latency": [asdict(r) for r in latencies],
        "throughput": [asdict(r) for r in rates],
    }
    out.write_text(json.dumps(document, indent=2))
    console.print(f"written {out.relative_to(ROOT)}")


def latency_table(results: list[Latency]) -> Table:
    table = Table(title="Submit to start on an idle cluster (from the API's 201)")
    for column in ("store", "jobs", "start p50 ms", "start p95 ms", "output p50", "output p95"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            r.store,
            str(r.jobs),
            f"{r.start_p50_ms:.0f}",
            f"{r.start_p95_ms:.0f}",
            f"{r.output_p50_ms:.0f}",
            f"{r.output_p95_ms:.0f}",
        )
    return table


def throughput_table(results: list[Throughput]) -> Table:
    table = Table(title="Short jobs (/bin/true, 1 GPU each), first submit to last end")
    for column in ("what", "jobs", "GPUs", "seconds", "jobs/s", "submitting s"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            r.store,
            f"{r.jobs:,}",
            str(r.gpus),
            f"{r.seconds:.1f}",
            f"{r.per_second:.1f}",
            f"{r.submit_seconds:.1f}",
        )
    return table


if __name__ == "__main__":
    main()
