"""The crash-safety harness (issue 5): the real service, SIGKILLed again and again while
clients submit jobs, then checked for lost, doubled or wrongly charged work.

    .venv/bin/python -m tests.live.crash --store sqlite --kills 100 --clients 16 --jobs 10000
    .venv/bin/python -m tests.live.crash --store postgresql --kills 100 --clients 16 --jobs 10000

It prints its findings as JSON and exits 1 when any check failed. tests/live/test_crash.py
runs a short form in CI, and the same harness with each planted fault (`--faults`,
api/deps.py F1/F2) to show it catches them.

How it runs:
H1. A fresh store (a SQLite file in a temporary home, or a new PostgreSQL database on
    127.0.0.1:5432), migrated, with a program admin bootstrapped before the first start.
H2. `kizuna server --port P` as a subprocess (KIZUNA_LOOP_EVERY=0.05, so the loop and the
    local executor run in it); one organization, two projects with an award each, one node
    of type `cpu` with 8 (virtual) GPUs.
H3. `clients` threads submit `jobs` short jobs of 1-2 GPUs (walltime 60 s), each with a unique
    name and its own Idempotency-Key, retrying the same key and body on a connection error
    or a 5xx until they get an answer. Only a 201 acknowledges a submission. A few answered
    submissions are sent again, as if the answer had been lost on the way (`resend`). At most
    `window` submitted jobs are unfinished at once, so the queue stays short.
H4. Meanwhile a killer SIGKILLs the server at random gaps and starts it again on the same
    home and store, `kills` times. Then the service runs until every job has ended.

What it checks, from the store and the executor's folder after the server stopped:
C1. Every acknowledged submission is in the store, under the id it was answered with.
C2. No submission is there twice (no name appears twice).
C3. No job is left pending, admitted, running or preempting; every run has ended and has
    exactly one usage record.
C4. Each usage record charges GPUs x min(its length, walltime) (ledger L2), to the run's award.
C5. No run was started twice: the run folders under `$KIZUNA_HOME/runs/` are exactly the
    stored runs' keys, and no rank's log shows the command started more than once (a run
    that succeeded: exactly once per rank).
C6. Per award: granted - charged >= 0, nothing held at the end, and the charged sum equals
    what the ledger's balance report (`services.ledger.balances`) says.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import Engine, func, select

from kizuna.execution.local import free_port
from kizuna.services import ledger, tokens
from kizuna.services.bootstrap import bootstrap
from kizuna.store.engine import make_engine, reading, session_factory, writing
from kizuna.store.migrate import upgrade
from kizuna.store.tables import Award, Job, JobEvent, Run, UsageRecord

PG_SERVER = os.environ.get("KIZUNA_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
MARKER = "kizuna-crash-started"
UNFINISHED = ("pending", "admitted", "running", "preempting")
API = "/api/v1"
GPUS = 8


@dataclass(frozen=True)
class Plan:
    store: str = "sqlite"
    kills: int = 10
    clients: int = 16
    jobs: int = 300
    faults: str = ""
    gap: tuple[float, float] = (0.5, 3.0)
    """Seconds between a restart and the next kill, drawn uniformly."""
    window: int = 48
    resend: float = 0.02
    sleeps: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.3, 1.0)
    """How long a job's command sleeps after its marker, drawn per job."""
    seed: int = 1
    settle: float = 600.0
    """Seconds the service gets, after the last kill and submission, to end every job."""
    verbose: bool = False
    """A progress line on stderr every 5 seconds."""


@dataclass
class Findings:
    store: str
    faults: str
    kills: int = 0
    clients: int = 0
    submissions: int = 0
    acknowledged: int = 0
    resent: int = 0
    retries: int = 0
    jobs: int = 0
    runs: int = 0
    usage_records: int = 0
    requeued_lost: int = 0
    requeued_preempted: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)

    def violated(self, rule: str) -> bool:
        return any(v.startswith(rule) for v in self.violations)


# -- the store and the server (H1, H2) ------------------------------------------------------


@contextlib.contextmanager
def fresh_store(store: str, home: Path) -> Iterator[str]:
    """H1: the URL of an empty, migrated store; a PostgreSQL database is dropped after."""
    if store == "sqlite":
        url = f"sqlite:///{home / 'kizuna.db'}"
        _migrate(url)
        yield url
        return
    name = f"kizuna_crash_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"{PG_SERVER}/{name}"
        _migrate(url)
        yield url
    finally:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _migrate(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()


def first_admin(engine: Engine) -> str:
    with writing(session_factory(engine)) as session:
        _, secret = bootstrap(session, "crash@office.example", "", "program-office", _now())
    return secret


def _now() -> datetime:
    return datetime.now(UTC)


class Server:
    """H2: `kizuna server` in a subprocess, killed and started again on the same store."""

    def __init__(self, home: Path, url: str, faults: str) -> None:
        self.home, self.port = home, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        kizuna = Path(sys.executable).with_name("kizuna")
        self.command = [str(kizuna), "server", "--port", str(self.port)]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
        self.env.update(
            KIZUNA_HOME=str(home),
            KIZUNA_DATABASE_URL=url,
            KIZUNA_LOOP_EVERY="0.05",
            KIZUNA_FAULTS=faults,
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 60.0) -> None:
        self.starts += 1
        with open(self.home / "server.log", "ab") as log:
            log.write(f"\n=== start {self.starts} ===\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited; see {self.home / 'server.log'}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.base + API + "/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"the server did not answer in {timeout} s")

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()


# -- the world, the clients, the killer (H2-H4) -----------------------------------------------


def build_world(base: str, token: str) -> list[str]:
    """H2: returns the two projects' names."""
    with httpx.Client(base_url=base + API, headers=_bearer(token), timeout=30) as client:

        def ok(path: str, body: dict[str, Any]) -> None:
            answer = client.post(path, json=body)
            assert answer.status_code < 300, answer.text

        ok("/organizations", {"name": "crash", "kind": "startup"})
        projects = []
        for name in ("alpha", "beta"):
            ok("/projects", {"organization": "crash", "name": name})
            projects.append(f"crash/{name}")
            award = {"project": f"crash/{name}", "gpu_type": "cpu", "gpu_hours": 100_000}
            award |= {"nominal_gpus": GPUS // 2, "starts_at": "2020-01-01T00:00:00Z"}
            ok("/awards", award | {"ends_at": "2099-01-01T00:00:00Z"})
        ok("/nodes", {"name": "crash-0", "gpu_type": "cpu", "gpus": GPUS})
    return projects


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Gate:
    """H3's window: submissions wait while `window` jobs are unfinished (read from the store)."""

    def __init__(self, engine: Engine, window: int, verbose: bool = False) -> None:
        self.sessions, self.window, self.verbose = session_factory(engine), window, verbose
        self.started = time.monotonic()
        self.open = threading.Event()
        self.done = threading.Event()
        self.open.set()

    def watch(self) -> None:
        ticks = 0
        while not self.done.wait(0.1):
            with contextlib.suppress(Exception), reading(self.sessions) as session:
                count = session.scalar(
                    select(func.count()).select_from(Job).where(Job.state.in_(UNFINISHED))
                )
                if (count or 0) < self.window:
                    self.open.set()
                else:
                    self.open.clear()
                ticks += 1
                if self.verbose and ticks % 50 == 0:
                    records = session.scalar(select(func.count()).select_from(UsageRecord))
                    elapsed = time.monotonic() - self.started
                    print(
                        f"{elapsed:7.1f} s: {count} unfinished, {records} usage records",
                        file=sys.stderr,
                        flush=True,
                    )


class Clients:
    """H3: submitters, retrying on connection errors with the same key and body."""

    def __init__(self, plan: Plan, base: str, token: str, projects: list[str], gate: Gate) -> None:
        self.plan, self.base, self.token, self.projects, self.gate = (
            plan,
            base,
            token,
            projects,
            gate,
        )
        self.numbers = itertools.count()
        self.lock = threading.Lock()
        self.acknowledged: dict[str, int] = {}
        self.refused: list[str] = []
        self.resent = self.retries = self.submissions = 0

    def run(self) -> None:
        threads = [
            threading.Thread(target=self._client, args=(i,), daemon=True)
            for i in range(self.plan.clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _next(self) -> int | None:
        with self.lock:
            number = next(self.numbers)
        return number if number < self.plan.jobs else None

    def _client(self, index: int) -> None:
        rng = random.Random(self.plan.seed * 1000 + index)
        with httpx.Client(base_url=self.base + API, headers=_bearer(self.token), timeout=60) as c:
            while (number := self._next()) is not None:
                self.gate.open.wait()
                body = self._body(number, rng)
                key = uuid.uuid4().hex
                answer = self._submit(c, body, key)
                with self.lock:
                    self.submissions += 1
                    if answer.status_code != 201:
                        self.refused.append(f"{body['name']}: {answer.status_code} {answer.text}")
                        continue
                    self.acknowledged[body["name"]] = answer.json()["id"]
                if rng.random() < self.plan.resend:
                    with self.lock:
                        self.resent += 1
                    self._submit(c, body, key)

    def _body(self, number: int, rng: random.Random) -> dict[str, Any]:
        sleep = rng.choice(self.plan.sleeps)
        script = f"echo {MARKER} $KIZUNA_JOB_ID $KIZUNA_RUN $RANK; sleep {sleep}"
        return {
            "project": self.projects[number % len(self.projects)],
            "name": f"crash-{self.plan.seed}-{number}",
            "command": ["/bin/sh", "-c", script],
            "gpus": rng.choice((1, 1, 2)),
            "gpu_type": "cpu",
            "walltime": 60,
            "grace": 1,
        }

    def _submit(self, client: httpx.Client, body: dict[str, Any], key: str) -> httpx.Response:
        pause = 0.05
        while True:
            try:
                answer = client.post("/jobs", json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError:
                answer = None
            if answer is not None and answer.status_code < 500:
                return answer
            with self.lock:
                self.retries += 1
            time.sleep(pause)
            pause = min(0.5, pause * 1.5)


def killer(server: Server, plan: Plan, rng: random.Random, findings: Findings) -> None:
    """H4."""
    for _ in range(plan.kills):
        time.sleep(rng.uniform(*plan.gap))
        server.kill()
        findings.kills += 1
        began = time.monotonic()
        server.start()
        if plan.verbose:
            took = time.monotonic() - began
            print(f"kill {findings.kills}: up again in {took:.1f} s", file=sys.stderr, flush=True)


def settle(engine: Engine, timeout: float) -> bool:
    """Waits until no job is unfinished; False if `timeout` passed first."""
    sessions = session_factory(engine)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with reading(sessions) as session:
            left = session.scalar(
                select(func.count()).select_from(Job).where(Job.state.in_(UNFINISHED))
            )
        if not left:
            return True
        time.sleep(0.25)
    return False


# -- the checks (C1-C6) ---------------------------------------------------------------------


def check(
    engine: Engine, home: Path, token: str, acknowledged: dict[str, int], found: Findings
) -> None:
    with reading(session_factory(engine)) as session:
        jobs = list(session.scalars(select(Job)))
        runs = list(session.scalars(select(Run)))
        records = list(session.scalars(select(UsageRecord)))
        awards = list(session.scalars(select(Award)))
        requeues = list(session.scalars(select(JobEvent).where(JobEvent.kind == "requeued")))
        principal = tokens.authenticate(session, token, _now())
        reported = {
            b.award.id: b.balance for b in ledger.balances(session, principal, _now(), None)
        }
    found.jobs, found.runs, found.usage_records = len(jobs), len(runs), len(records)
    found.requeued_lost = sum("lost" in e.message for e in requeues)
    found.requeued_preempted = sum("preempted" in e.message for e in requeues)
    found.outcomes = dict(Counter(r.outcome or "open" for r in runs))
    by_run = defaultdict(list)
    for record in records:
        by_run[record.run_id].append(record)
    walltimes = {j.id: j.walltime for j in jobs}
    _submissions(jobs, acknowledged, found.violations)
    _runs(jobs, runs, by_run, walltimes, found.violations)
    _folders(home / "runs", runs, found.violations)
    _awards(awards, records, runs, reported, found.violations)


def _submissions(jobs: list[Job], acknowledged: dict[str, int], out: list[str]) -> None:
    by_id = {j.id: j for j in jobs}
    for name, job_id in sorted(acknowledged.items()):
        stored = by_id.get(job_id)
        if stored is None or stored.name != name:
            out.append(f"C1 acknowledged submission {name} (job {job_id}) is not in the store")
    for name, count in sorted(Counter(j.name for j in jobs).items()):
        if count > 1:
            out.append(f"C2 submission {name} is in the store {count} times")


def _runs(
    jobs: list[Job],
    runs: list[Run],
    by_run: dict[int, list[UsageRecord]],
    walltimes: dict[int, int],
    out: list[str],
) -> None:
    out.extend(f"C3 job {j.id} is still {j.state}" for j in jobs if j.state in UNFINISHED)
    for run in runs:
        key = f"job-{run.job_id}-{run.segment}"
        kept = by_run.get(run.id, [])
        if run.ended_at is None or len(kept) != 1:
            out.append(f"C3 run {key}: ended {run.ended_at}, {len(kept)} usage records")
            continue
        record = kept[0]
        length_us = (record.ended_at - record.started_at) // timedelta(microseconds=1)
        want = record.gpus * min(round(length_us / 1000), walltimes[run.job_id] * 1000)
        if abs(record.gpu_ms - want) > record.gpus or record.gpus != run.gpus:
            out.append(f"C4 run {key} charged {record.gpu_ms} GPU-ms, L2 says {want}")
        if record.award_id != run.award_id:
            out.append(f"C4 run {key} charged to {record.award_id}, held on {run.award_id}")


def _folders(root: Path, runs: list[Run], out: list[str]) -> None:
    stored = {f"job-{r.job_id}-{r.segment}": r for r in runs}
    on_disk = {p.name for p in root.iterdir() if p.is_dir()} if root.exists() else set()
    out.extend(f"C5 run folder {k} has no stored run" for k in sorted(on_disk - set(stored)))
    never = {k for k, r in stored.items() if r.started_at is None}  # stopped before launch
    out.extend(f"C5 run {k} has no run folder" for k in sorted(set(stored) - on_disk - never))
    for key in sorted(on_disk & set(stored)):
        run = stored[key]
        for rank in range(run.gpus):
            log = root / key / f"rank-{rank}.log"
            starts = log.read_text().count(MARKER) if log.exists() else 0
            if starts > 1 or (run.outcome == "succeeded" and starts != 1):
                out.append(f"C5 run {key} rank {rank} started {starts} times ({run.outcome})")


def _awards(
    awards: list[Award],
    records: list[UsageRecord],
    runs: list[Run],
    reported: dict[str, Any],
    out: list[str],
) -> None:
    charged: dict[str, int] = defaultdict(int)
    for record in records:
        charged[record.award_id] += record.gpu_ms
    for award in awards:
        granted = award.gpu_seconds * 1000
        if granted - charged[award.id] < 0:
            out.append(f"C6 award {award.id} overdrawn: {granted - charged[award.id]} GPU-ms")
        balance = reported.get(award.id)
        if balance is None or balance.charged_ms != charged[award.id] or balance.held_ms:
            out.append(f"C6 award {award.id}: records {charged[award.id]}, report {balance}")
    open_runs = [r for r in runs if r.ended_at is None]
    if open_runs:
        out.append(f"C6 {len(open_runs)} runs still hold GPU-hours")


# -- the whole run ----------------------------------------------------------------------------


def run(plan: Plan, home: Path | None = None) -> Findings:
    """H1-H4, then C1-C6."""
    if home is None:
        with tempfile.TemporaryDirectory(prefix="kizuna-crash-") as folder:
            return run(plan, Path(folder))
    found = Findings(plan.store, plan.faults, clients=plan.clients)
    started = time.monotonic()
    with fresh_store(plan.store, home) as url:
        engine = make_engine(url)
        token = first_admin(engine)
        server = Server(home, url, plan.faults)
        try:
            server.start()
            projects = build_world(server.base, token)
            gate = Gate(engine, plan.window, plan.verbose)
            clients = Clients(plan, server.base, token, projects, gate)
            watcher = threading.Thread(target=gate.watch, daemon=True)
            watcher.start()
            kills = threading.Thread(
                target=killer, args=(server, plan, random.Random(plan.seed), found), daemon=True
            )
            kills.start()
            clients.run()
            kills.join()
            gate.done.set()
            if not settle(engine, plan.settle):
                found.violations.append(f"C3 jobs still unfinished after {plan.settle} s")
        finally:
            server.stop()
        found.submissions, found.acknowledged = clients.submissions, len(clients.acknowledged)
        found.resent, found.retries = clients.resent, clients.retries
        found.violations.extend(f"H3 refused: {r}" for r in clients.refused)
        check(engine, home, token, clients.acknowledged, found)
        engine.dispose()
    found.seconds = round(time.monotonic() - started, 1)
    if plan.verbose:
        print(json.dumps(asdict(found) | {"violations": found.violations[:20]}), file=sys.stderr)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.live.crash", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--faults", default="", help="no-idempotency, ack-before-commit")
    parser.add_argument("--gap", type=float, nargs=2, default=(0.5, 3.0), metavar=("MIN", "MAX"))
    parser.add_argument("--window", type=int, default=48)
    parser.add_argument("--resend", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--home", type=Path, help="keep the home here (default: a temporary one)")
    args = parser.parse_args(argv)
    plan = Plan(
        args.store,
        args.kills,
        args.clients,
        args.jobs,
        args.faults,
        tuple(args.gap),
        args.window,
        args.resend,
        seed=args.seed,
        verbose=not args.quiet,
    )
    if args.home is not None:
        args.home.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the server stops with us
    found = run(plan, args.home)
    print(json.dumps(asdict(found) | {"violations": found.violations[:50]}, indent=1))
    return 1 if found.violations else 0


if __name__ == "__main__":
    sys.exit(main())
