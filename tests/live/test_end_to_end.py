"""The two-rank DDP example through the API and the live loop: preempted in the middle by a
job within its nominal quota, requeued, resumed from its checkpoint, finished with the same
weights as an uninterrupted run, and charged exactly the GPU time of its two runs (ADR 0022,
0023). Also: a cancelled running job gets its signal and is charged until it stopped; a job
past its walltime is stopped and charged no more than GPUs x walltime."""

from __future__ import annotations

import json
import sys
import time

import pytest

from kizuna.api.testing import Service
from kizuna.ledger.rules import charge_ms
from live import jobs
from live.jobs import runs_of, wait_for


def world(live: Service) -> None:
    """One node of two virtual GPUs of type `cpu`, and the two projects of `jobs.world`."""
    live.node("n0", "cpu", 2)
    jobs.world(live, "cpu")


def ddp(live: Service, project: str, *extra: str) -> int:
    return jobs.ddp(live, project, "cpu", *extra)


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
    assert all(run.started_at is not None for run, _ in runs)
    jobs.charged_by_the_rule(live, done["project_id"], runs, 600)


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


def test_a_job_that_asked_not_to_be_requeued_fails_when_its_node_goes_down(
    live: Service,
) -> None:
    world(live)
    command = [sys.executable, "-c", "import time; time.sleep(60)"]
    made = live.job("acme/urgent", 2, command=command, gpu_type="cpu", walltime=600, requeue=False)
    job = made["id"]
    assert made["requeue"] is False
    wait_for(live, job, {"running"}, 30)
    live.ok("PATCH", "/nodes/n0", json={"state": "down"})
    failed = wait_for(live, job, {"failed", "pending"}, 30)
    assert failed["state"] == "failed" and failed["ended_at"] and failed["segments"] == 1
    assert [e["kind"] for e in failed["events"]][-2:] == ["node-down", "failed"]
    assert "asked not to be requeued" in failed["events"][-1]["message"]
    [(run, record)] = runs_of(live, job)
    assert run.outcome == "node-down" and record is not None and record.gpu_ms > 0
