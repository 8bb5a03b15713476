"""The two-rank DDP example through the API and the live loop: preempted in the middle by a
job within its nominal quota, requeued, resumed from its checkpoint, finished with the same
weights as an uninterrupted run, and charged exactly the GPU time of its two runs (ADR 0022,
0023). Also: a cancelled running job gets its signal and is charged until it stopped; a job
past its walltime is stopped and charged no more than GPUs x walltime."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
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


def world(live: Service) -> None:
    """One node of two virtual GPUs; `acme/urgent` owns them (nominal 2), `beta/train` has
    no nominal quota and borrows whatever is idle."""
    live.node("n0", "cpu", 2)
    live.org("acme")
    live.project("acme", "urgent")
    live.award("acme/urgent", "cpu", hours=10, nominal=2)
    live.org("beta")
    live.project("beta", "train")
    live.award("beta/train", "cpu", hours=10, nominal=0)


def ddp(live: Service, project: str, *extra: str) -> int:
    command = [sys.executable, str(EXAMPLE), "--steps", "40", *extra]
    job = live.job(project, 2, command=command, gpu_type="cpu", walltime=600, grace=20)
    return int(job["id"])


def runs_of(live: Service, job: int) -> list[tuple[Run, UsageRecord | None]]:
    sessions = live.client.app.state.kizuna.sessions  # type: ignore[attr-defined]
    with reading(sessions) as session:
        runs = list(session.scalars(select(Run).where(Run.job_id == job).order_by(Run.segment)))
        usage = {u.run_id: u for u in session.scalars(select(UsageRecord))}
        return [(r, usage.get(r.id)) for r in runs]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # the store: the other tests
def test_ddp_is_preempted_resumes_from_its_checkpoint_and_is_charged_exactly(
    live: Service,
) -> None:
    world(live)
    home = live.client.app.state.kizuna.settings.home  # type: ignore[attr-defined]
    reference = ddp(live, "acme/urgent")
    assert wait_for(live, reference, {"succeeded", "failed"})["state"] == "succeeded"

    job = ddp(live, "beta/train", "--step-seconds", "0.15", "--checkpoint-every", "5")
    folder = home / "checkpoints" / f"job-{job}"
    deadline = time.monotonic() + 90
    while not (folder / "checkpoint.pt").exists():
        assert time.monotonic() < deadline, live.ok("GET", f"/jobs/{job}")
        time.sleep(0.1)
    assert live.ok("GET", f"/jobs/{job}")["state"] == "running"

    sleep = [sys.executable, "-c", "import time; time.sleep(2)"]
    urgent = live.job("acme/urgent", 2, command=sleep, gpu_type="cpu", walltime=60)["id"]
    done = wait_for(live, job, {"succeeded", "failed", "cancelled", "timed-out"}, 180)
    assert done["state"] == "succeeded", done
    kinds = [e["kind"] for e in done["events"]]
    assert kinds == [
        "submitted",
        "admitted",
        "started",
        "preempting",
        "requeued",
        "admitted",
        "started",
        "succeeded",
    ]
    assert done["segments"] == 2
    assert wait_for(live, urgent, {"succeeded", "failed"})["state"] == "succeeded"

    result = json.loads((folder / "result.json").read_text())
    expected = json.loads((home / "checkpoints" / f"job-{reference}" / "result.json").read_text())
    assert result == expected  # the same weights as the uninterrupted run
    second_log = (home / "runs" / f"job-{job}-2" / "rank-0.log").read_text()
    assert "starting at step 0" not in second_log  # it resumed

    runs = runs_of(live, job)
    assert [(r.segment, r.outcome) for r, _ in runs] == [(1, "preempted"), (2, "succeeded")]
    first, urgent_run = runs[0][0], runs_of(live, urgent)[0][0]
    assert first.ended_at is not None and urgent_run.started_at is not None
    assert urgent_run.started_at >= first.ended_at  # the GPUs were free before they were given
    for run, record in runs:
        assert record is not None and run.started_at is not None and run.ended_at is not None
        length = (run.ended_at - run.started_at).total_seconds()
        assert record.gpu_ms == charge_ms(2, 0.0, length, 600) > 0
    sessions = live.client.app.state.kizuna.sessions  # type: ignore[attr-defined]
    with reading(sessions) as session:
        award = session.scalar(select(Award).where(Award.project_id == done["project_id"]))
        assert award is not None
        balance = balances_of(session, [award])[award.id]
    charged = sum(record.gpu_ms for _, record in runs if record is not None)
    assert (balance.charged_ms, balance.held_ms) == (charged, 0)
    assert balance.available_ms == 10 * 3600 * 1000 - charged


def test_a_cancelled_running_job_gets_its_signal_and_pays_until_it_stopped(
    live: Service,
) -> None:
    world(live)
    trap = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGUSR1, lambda *_: (print('saving', flush=True), sys.exit(7)))\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n"
    )
    command = [sys.executable, "-c", trap]
    job = live.job(
        "acme/urgent", 1, command=command, gpu_type="cpu", walltime=600, signal="USR1", grace=10
    )["id"]
    home = live.client.app.state.kizuna.settings.home  # type: ignore[attr-defined]
    log = home / "runs" / f"job-{job}-1" / "rank-0.log"
    deadline = time.monotonic() + 30
    while not (log.exists() and "up" in log.read_text()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    live.ok("POST", f"/jobs/{job}/cancel")
    done = wait_for(live, job, {"cancelled", "failed", "succeeded"}, 30)
    assert done["state"] == "cancelled" and done["exit_code"] == 7
    assert "saving" in log.read_text()  # it got the signal it asked for (USR1), not TERM
    [(run, record)] = runs_of(live, job)
    assert record is not None and run.started_at is not None and run.ended_at is not None
    assert record.gpu_ms == charge_ms(1, run.started_at.timestamp(), run.ended_at.timestamp(), 600)
    assert 0 < record.gpu_ms < 30_000


def test_a_job_past_its_walltime_is_stopped_and_pays_at_most_its_walltime(
    live: Service,
) -> None:
    world(live)
    command = [sys.executable, "-c", "import time; time.sleep(60)"]
    job = live.job("acme/urgent", 2, command=command, gpu_type="cpu", walltime=3, grace=1)["id"]
    done = wait_for(live, job, {"timed-out", "failed", "succeeded"}, 30)
    assert done["state"] == "timed-out"
    assert "timing-out" in [e["kind"] for e in done["events"]]
    [(_, record)] = runs_of(live, job)
    assert record is not None and record.gpu_ms <= 2 * 3 * 1000
    assert record.gpu_ms >= 2 * 1500  # it ran until about walltime - grace


def test_a_run_on_a_node_that_goes_down_is_killed_and_its_job_requeued(live: Service) -> None:
    world(live)
    command = [sys.executable, "-c", "import time; time.sleep(60)"]
    job = live.job("acme/urgent", 2, command=command, gpu_type="cpu", walltime=600)["id"]
    wait_for(live, job, {"running"}, 30)
    live.ok("PATCH", "/nodes/n0", json={"state": "down"})
    waiting = wait_for(live, job, {"pending"}, 30)
    assert [e["kind"] for e in waiting["events"]][-2:] == ["node-down", "requeued"]
    assert waiting["reason"] is not None  # it waits for GPUs while the node is down
    [(run, record)] = runs_of(live, job)
    assert run.outcome == "node-down" and record is not None and record.gpu_ms > 0
    live.ok("PATCH", "/nodes/n0", json={"state": "up"})
    again = wait_for(live, job, {"running"}, 30)
    assert again["segments"] == 2
    live.ok("POST", f"/jobs/{job}/cancel")
    assert wait_for(live, job, {"cancelled"}, 60)["state"] == "cancelled"
