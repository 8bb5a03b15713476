"""Planning fidelity (issue 5): what the live service does, the simulator predicts.

Fifty short jobs (sleeps of 4.5-12 s, gangs of 1-4 GPUs, two projects with nominal quotas of
4 GPUs each) are submitted over 112 s to the live service (the loop in its thread, the local
executor, one node of 8 virtual GPUs, SQLite): about 35 of them queue behind their project's
quota, some for 20 s. Once all have finished, their history is exported as a canonical trace
(`GET /history/jobs`, what `kizuna jobs export` writes) and replayed through the simulator with
the same policy, the same node and the same projects (picture.py P3: one cohort, shares =
nominal GPUs, usage not decayed). The replay must start any two jobs it starts more than 0.5 s
apart in the same order as the live service did, and end each job within 5 % of its live
completion time (end - submit).

Why not every pair: two admissions a few tens of milliseconds apart (a small job of a
project backfilled on arrival next to a larger one of the same project admitted when GPUs
free up, or jobs of the two projects, which never compete) come in either order live: the
loop decides 10-30 ms after each event and each job's processes start with their own noise
(ADR 0022), and those delays add up along chains of jobs that wait for each other. Seen in
CI: jobs 9 and 10 of one project, 70 ms apart in the replay, started the other way round.

A job's start is its first admission (live: the `admitted_at` of its first run that started;
ties by job id, as the replay has them): the cost of starting processes is part of the work
the export reports (H3). Submissions come one every 1.2 s (jittered), each on its own.

No borrowing here, so no reclaim: with it, which borrower is preempted, and whether, turns on
differences of tens of milliseconds between a job's end and an arrival, and the live loop
decides ~20 ms after each event (ADR 0022) while the simulator decides at the instant; one
flipped decision then changes everything after it (seen: same order for 10-15 jobs, then a
split). Reclaim itself is checked by the golden tests of the core and, live, by
tests/live/test_end_to_end.py. The live loop's latency still adds up along chains of jobs
that wait for each other; this workload keeps it within the 5 %.

Why these lengths: the machine itself stalls now and then. Seen in CI with jobs of 3-8 s: two
jobs admitted 1.1 s later than the replay said, all at once (the loop missed a second; its
ticks are 20-140 ms apart here, measured), which was 5.9 % of their 18 s completion. Jobs
1.5 times as long make such a stall 3.9 %; the test runs ~150 s.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from kizuna.api.testing import AWARD_WINDOW, Service, running
from kizuna.config import Settings
from kizuna.kernel.ids import CohortId, GpuType, JobId, ProjectId
from kizuna.kernel.units import Instant, Seconds
from kizuna.scheduling import make_policy
from kizuna.scheduling.model import PRIORITY_CLASSES, Job, Project, Quota
from kizuna.services import nodes as node_service
from kizuna.simulation.metrics import JobHistory
from kizuna.simulation.replay import ReplayOptions, replay
from kizuna.simulation.workload import TraceJob, Workload
from kizuna.store.engine import reading
from kizuna.store.tables import Run
from kizuna.traces.canonical import read_csv
from kizuna.traces.model import TraceRecord

SEED = 20261127
JOBS = 50
SPREAD = 112.0
"""Seconds over which the jobs are submitted."""
GPU_TYPE = "H100"
NODE_GPUS = 8
NOMINAL, BORROW = 4, 0
PROJECTS = ("fidelity/alpha", "fidelity/beta")
TOLERANCE = 0.05
APART = 0.5
"""Seconds: two jobs the replay starts closer than this may start in either order live."""
LOOP_EVERY = 0.02
DEADLINE = 240.0


@dataclass(frozen=True)
class Planned:
    at: float
    project: str
    gpus: int
    sleep: float


@dataclass(frozen=True)
class Live:
    submit: float
    start: float
    end: float


def plan() -> list[Planned]:
    rng = random.Random(SEED)
    step = SPREAD / JOBS
    offsets = [n * step + rng.uniform(0.0, step / 4) for n in range(JOBS)]
    return [
        Planned(at, rng.choice(PROJECTS), rng.randint(1, 4), round(rng.uniform(4.5, 12.0), 2))
        for at in offsets
    ]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    settings = Settings(home=tmp_path / "kizuna", loop_every=LOOP_EVERY)
    with running(settings) as started:
        yield started


def setup(service: Service) -> None:
    service.org("fidelity")
    for ref in PROJECTS:
        service.project(*ref.split("/"))
        body = {
            "project": ref,
            "gpu_type": GPU_TYPE,
            "gpu_hours": 1000,
            "nominal_gpus": NOMINAL,
            "borrowing_limit": BORROW,
            **AWARD_WINDOW,
        }
        service.ok("POST", "/awards", json=body)
    service.node("n0", GPU_TYPE, NODE_GPUS)


def submit_all(service: Service, jobs: list[Planned]) -> list[int]:
    ids = []
    t0 = time.monotonic()
    for job in jobs:
        time.sleep(max(0.0, t0 + job.at - time.monotonic()))
        command = [sys.executable, "-c", f"import time; time.sleep({job.sleep})"]
        made = service.job(
            job.project, job.gpus, command=command, gpu_type=GPU_TYPE, walltime=60, grace=0
        )
        ids.append(int(made["id"]))
    return ids


def wait_all(service: Service, ids: list[int]) -> None:
    deadline = time.monotonic() + DEADLINE
    left = set(ids)
    while left:
        assert time.monotonic() < deadline, f"jobs still not finished: {sorted(left)}"
        time.sleep(0.5)
        for job_id in sorted(left):
            if service.ok("GET", f"/jobs/{job_id}")["state"] == "succeeded":
                left.discard(job_id)


def live_history(service: Service, ids: list[int]) -> dict[str, Live]:
    app: Any = service.client.app
    out = {}
    with reading(app.state.kizuna.sessions) as session:
        for job_id in ids:
            runs = list(session.scalars(select(Run).where(Run.job_id == job_id)))
            job = service.ok("GET", f"/jobs/{job_id}")
            starts = [r.admitted_at for r in runs if r.started_at is not None]
            ends = [r.ended_at for r in runs if r.ended_at is not None]
            out[str(job_id)] = Live(
                datetime.fromisoformat(job["submitted_at"]).timestamp(),
                min(starts).timestamp(),
                max(ends).timestamp(),
            )
    return out


def workload(service: Service, records: tuple[TraceRecord, ...], ids: dict[str, str]) -> Workload:
    """The replay's inputs as the live loop saw them (picture.py P1-P3)."""
    app: Any = service.client.app
    with reading(app.state.kizuna.sessions) as session:
        nodes = node_service.core_nodes(session)
    projects = {
        ProjectId(pid): Project(
            ProjectId(pid),
            CohortId("program"),
            {GpuType(GPU_TYPE): Quota(NOMINAL, BORROW)},
            shares=float(NOMINAL),
        )
        for pid in ids.values()
    }
    jobs = tuple(
        TraceJob(
            Job(
                JobId(r.id),
                ProjectId(ids[r.project]),
                GpuType(r.gpu_type or GPU_TYPE),
                r.gpus,
                Seconds(r.walltime or 60.0),
                Instant(r.submit),
                priority=PRIORITY_CLASSES[r.priority],
            ),
            Seconds(r.duration),
        )
        for r in records
    )
    return Workload(nodes, projects, jobs, {})


def test_the_simulator_predicts_the_live_loop(service: Service, tmp_path: Path) -> None:
    setup(service)
    project_ids = {ref: service.ok("GET", f"/projects/{ref}")["id"] for ref in PROJECTS}
    ids = submit_all(service, plan())
    wait_all(service, ids)
    live = live_history(service, ids)

    exported = tmp_path / "history.csv"
    exported.write_bytes(service.call("GET", "/history/jobs", params={"format": "csv"}).content)
    trace = read_csv(exported)
    assert sorted(r.id for r in trace.records) == sorted(live)

    options = ReplayOptions(
        checkpoint_interval=Seconds(1e-6), restart_overhead=Seconds(0.0), usage_period=Seconds(0)
    )
    result = replay(
        workload(service, trace.records, project_ids), make_policy("fair-share"), options
    )
    sim = {str(h.job.id): h for h in result.histories}

    waited = [j for j in live.values() if j.start - j.submit >= 1.0]
    assert len(waited) >= 10, "the workload must make jobs queue, or it checks nothing"
    live_order = sorted(live, key=lambda j: (live[j].start, int(j)))
    errors = {j: error(live[j], sim[j]) for j in live_order}
    report = "\n".join(f"job {j}: {describe(live[j], sim[j])}" for j in live_order)
    sim_start = {j: sim[j].runs[0].start for j in sim}
    inverted = [
        (a, b)
        for a in live_order
        for b in live_order
        if sim_start[a] + APART < sim_start[b] and live[a].start > live[b].start
    ]
    assert not inverted, f"admission order differs for {inverted}:\n{report}"
    pairs = [(a, b) for i, a in enumerate(live_order) for b in live_order[i + 1 :]]
    compared = [(a, b) for a, b in pairs if abs(sim_start[a] - sim_start[b]) > APART]
    assert len(compared) >= 0.9 * len(pairs), "the order must be checked for most pairs"
    assert max(errors.values()) <= TOLERANCE, f"completion times differ:\n{report}"


def error(live: Live, sim: JobHistory) -> float:
    """|predicted - real| / real of a job's completion time (end - submit)."""
    assert sim.end is not None
    real = live.end - live.submit
    return abs((sim.end - sim.job.submit_time) - real) / real


def describe(live: Live, sim: JobHistory) -> str:
    submit = sim.job.submit_time
    return (
        f"live admitted +{live.start - live.submit:.3f} s, done +{live.end - live.submit:.3f} s;"
        f" replay admitted +{sim.runs[0].start - submit:.3f} s,"
        f" done +{(sim.end or 0.0) - submit:.3f} s ({len(sim.runs)} runs);"
        f" {error(live, sim):.1%}"
    )
