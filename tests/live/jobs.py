"""What the live tests (here and in tests/multinode) do with jobs: a small program of two
projects, the DDP example submitted, waiting for a state, a job's runs with their usage."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from kizuna.api.testing import Service
from kizuna.ledger.rules import charge_ms
from kizuna.services.ledger import balances_of
from kizuna.store.engine import reading
from kizuna.store.tables import Award, Run, UsageRecord

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ddp_train.py"


def wait_for(live: Service, job: int, states: set[str], timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, Any] = live.ok("GET", f"/jobs/{job}")
        if found["state"] in states:
            return found
        assert time.monotonic() < deadline, (states, found)
        time.sleep(0.1)


def world(live: Service, gpu_type: str) -> None:
    """`acme/urgent` owns two GPUs of `gpu_type` (nominal 2); `beta/train` has no nominal
    quota and borrows whatever is idle."""
    live.org("acme")
    live.project("acme", "urgent")
    live.award("acme/urgent", gpu_type, hours=10, nominal=2)
    live.org("beta")
    live.project("beta", "train")
    live.award("beta/train", gpu_type, hours=10, nominal=0)


def ddp(
    live: Service, project: str, gpu_type: str, *extra: str, prefix: tuple[str, ...] = ()
) -> int:
    """The two-rank DDP example, 40 steps; `prefix` goes before the command (e.g. `env`)."""
    command = [*prefix, sys.executable, str(EXAMPLE), "--steps", "40", *extra]
    job = live.job(project, 2, command=command, gpu_type=gpu_type, walltime=600, grace=20)
    return int(job["id"])


def runs_of(live: Service, job: int) -> list[tuple[Run, UsageRecord | None]]:
    sessions = live.client.app.state.kizuna.sessions  # type: ignore[attr-defined]
    with reading(sessions) as session:
        runs = list(session.scalars(select(Run).where(Run.job_id == job).order_by(Run.segment)))
        usage = {u.run_id: u for u in session.scalars(select(UsageRecord))}
        return [(r, usage.get(r.id)) for r in runs]


def charged_by_the_rule(
    live: Service, project_id: str, runs: list[tuple[Run, UsageRecord | None]], walltime: int
) -> int:
    """Asserts each run's usage record is its GPUs x its length to the millisecond (ledger
    L2; a run that never started: 0) and that the project's award was charged exactly the
    sum, with nothing held; returns the sum."""
    for run, record in runs:
        assert record is not None and run.ended_at is not None
        if run.started_at is None:
            assert record.gpu_ms == 0
            continue
        length = (run.ended_at - run.started_at).total_seconds()
        assert record.gpu_ms == charge_ms(run.gpus, 0.0, length, walltime) > 0
    sessions = live.client.app.state.kizuna.sessions  # type: ignore[attr-defined]
    with reading(sessions) as session:
        award = session.scalar(select(Award).where(Award.project_id == project_id))
        assert award is not None
        balance = balances_of(session, [award])[award.id]
    charged = sum(record.gpu_ms for _, record in runs if record is not None)
    assert (balance.charged_ms, balance.held_ms) == (charged, 0)
    return charged
