"""Benchmark of job submission through the REST API (issue 4).

For each store (SQLite in a temporary home; PostgreSQL on 127.0.0.1:5432 in a fresh
database) it starts the real service with uvicorn in a process of its own (`--server-workers`
processes, the audit checkpointer running), seeds an organization, a project, an award and
nodes, then `--clients` concurrent clients (asyncio + httpx, one connection each) POST
`/api/v1/jobs` with an `Idempotency-Key` each, for `--seconds` after a warm-up. Every
submission is a full one: token check, validation against the nodes and awards, the job, its
event, its audit entry and its kept response in one committed transaction. Prints
submissions/s and p50/p99 latency, checks every 201 landed (jobs counted in the store after
the run) and writes the figures as JSON under bench/results/:
`.venv/bin/python bench/api_submit.py [--store sqlite --store postgresql] [--seconds 20]`.
The "baseline" rows serve GET /health (no token, no store) through the same server and load
generator: the ceiling of the HTTP stack on this machine, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from kizuna.execution.local import free_port
from kizuna.services.bootstrap import bootstrap
from kizuna.store.engine import make_engine, session_factory, writing
from kizuna.store.migrate import upgrade
from machine import facts  # bench/machine.py
from stores import database, drop  # bench/stores.py

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SERVER = """
import sys, uvicorn
from pathlib import Path
from kizuna.api.app import create_app
from kizuna.config import Settings
home, url, port, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
settings = Settings(home=Path(home), database_url=url)
if workers == 1:
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
else:
    import os
    os.environ["KIZUNA_HOME"], os.environ["KIZUNA_DATABASE_URL"] = home, url
    uvicorn.run("kizuna.api.app:create_app_from_environment", factory=True, host="127.0.0.1",
                port=port, workers=workers, log_level="warning")
"""


@dataclass(frozen=True)
class Result:
    store: str
    """The store, or "baseline" for GET /health (no store touched)."""
    server_workers: int
    clients: int
    seconds: float
    submitted: int
    errors: int
    per_second: float
    p50_ms: float
    p99_ms: float
    jobs_in_store: int


def first_admin(home: Path, url: str) -> str:
    engine = make_engine(url)
    upgrade(engine)
    with writing(session_factory(engine)) as session:
        _, secret = bootstrap(
            session, "bench@office.example", "Bench", "program-office", datetime.now(UTC)
        )
    engine.dispose()
    return secret


def start_server(home: Path, url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", SERVER, str(home), url, str(port), str(workers)]
    server = subprocess.Popen(command)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health").status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("the service did not start within 60 s")


def seed(base: str, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=base, headers=headers) as client:
        for path, body in (
            ("/organizations", {"name": "acme", "kind": "startup"}),
            ("/projects", {"organization": "acme", "name": "llm"}),
            *[("/nodes", {"name": f"h100-{i}", "gpu_type": "H100", "gpus": 8}) for i in range(16)],
            (
                "/awards",
                {
                    "project": "acme/llm",
                    "gpu_type": "H100",
                    "gpu_hours": 10**9,
                    "nominal_gpus": 64,
                    "starts_at": "2026-01-01T00:00:00Z",
                    "ends_at": "2099-01-01T00:00:00Z",
                },
            ),
        ):
            response = client.post(path, json=body)
            response.raise_for_status()


JOB = {
    "project": "acme/llm",
    "command": ["python", "train.py"],
    "gpus": 8,
    "gpu_type": "H100",
    "walltime": 3600,
}


async def load(
    base: str,
    headers: dict[str, str],
    clients: int,
    warmup: float,
    seconds: float,
    health: bool = False,
) -> tuple[list[float], int, int]:
    """`clients` loops submitting jobs (or, as the baseline, asking GET /health: the same HTTP
    stack and load generator with no work behind them); latencies of those that ended in the
    timed window."""
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0}
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds

    async def client_loop() -> None:
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(
            base_url=base, headers=headers, limits=limits, timeout=60
        ) as client:
            while time.perf_counter() < stop_at:
                sent = time.perf_counter()
                if health:
                    response = await client.get("/health")
                else:
                    response = await client.post(
                        "/jobs", json=JOB, headers={"Idempotency-Key": uuid.uuid4().hex}
                    )
                done = time.perf_counter()
                if response.status_code in (200, 201):
                    counts["ok"] += 1
                else:
                    counts["errors"] += 1
                if measure_from <= sent and done <= stop_at:
                    latencies.append(done - sent)

    await asyncio.gather(*(client_loop() for _ in range(clients)))
    return latencies, counts["ok"], counts["errors"]


def jobs_in_store(base: str, headers: dict[str, str]) -> int:
    total, cursor = 0, None
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        while True:
            params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            page = client.get("/jobs", params=params).json()
            total += len(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return total


def run(store: str, workers: int, clients: int, warmup: float, seconds: float) -> Result:
    """Submissions against `store`; store "baseline": GET /health on a SQLite service."""
    health = store == "baseline"
    store = "sqlite" if health else store
    # the ranks of jobs the loop started (commands that fail at once) may still be writing
    # their exit records into the runs folder as the folder is removed
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        home = Path(tmp)
        url = database(store, home)
        try:
            token = first_admin(home, url)
            port = free_port()
            server = start_server(home, url, port, workers)
            base = f"http://127.0.0.1:{port}/api/v1"
            headers = {"Authorization": f"Bearer {token}"}
            try:
                seed(base, headers)
                latencies, ok, errors = asyncio.run(
                    load(base, headers, clients, warmup, seconds, health)
                )
                landed = ok if health else jobs_in_store(base, headers)
            finally:
                server.terminate()
                server.wait(30)
        finally:
            drop(url)
    if landed != ok:
        raise SystemExit(f"{ok} submissions were acknowledged but {landed} jobs are stored")
    cuts = statistics.quantiles(latencies, n=100)
    return Result(
        "baseline" if health else store,
        workers,
        clients,
        seconds,
        ok,
        errors,
        len(latencies) / seconds,
        cuts[49] * 1000,
        cuts[98] * 1000,
        landed,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--store",
        action="append",
        choices=["baseline", "sqlite", "postgresql"],
        help="default: all; baseline = GET /health, the HTTP stack alone",
    )
    parser.add_argument("--server-workers", type=int, action="append")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    results = [
        run(store, workers, args.clients, args.warmup, args.seconds)
        for store in args.store or ["baseline", "sqlite", "postgresql"]
        for workers in args.server_workers or [1, 2]
    ]
    table = Table(title=f"Job submissions through POST /api/v1/jobs, {args.clients} clients")
    for column in (
        "store",
        "server processes",
        "submitted",
        "errors",
        "per second",
        "p50 ms",
        "p99 ms",
    ):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            r.store,
            str(r.server_workers),
            f"{r.submitted:,}",
            str(r.errors),
            f"{r.per_second:,.0f}",
            f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}",
        )
    Console().print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"api_submit-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(
        json.dumps(
            {
                "machine": facts(),
                "results": [asdict(r) for r in results],
            },
            indent=2,
        )
    )
    Console().print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
