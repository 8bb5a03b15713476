"""The replay loop: hand-checked scenarios, invariants on generated workloads, determinism."""

from __future__ import annotations

import gc
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterable

import pytest

from kizuna.kernel.errors import InvalidRequest
from kizuna.kernel.ids import JobId, ProjectId
from kizuna.kernel.units import Instant, Seconds
from kizuna.scheduling import POLICIES, CycleResult, Job, Project, Snapshot, make_policy
from kizuna.scheduling.testing import job, nodes, project, projects
from kizuna.simulation import (
    Outcome,
    ReplayOptions,
    ReplayResult,
    TraceJob,
    Workload,
    WorkloadSpec,
    generate,
    replay,
)
from kizuna.simulation.replay import YOUNG_COLLECTION_AFTER


def workload(trace: Iterable[tuple[Job, float]], *members: Project, count: int = 2) -> Workload:
    """A cluster of `count` 8-GPU H100 nodes and the given jobs with their true durations."""
    jobs = tuple(TraceJob(j, Seconds(d)) for j, d in trace)
    group = projects(*members) if members else projects(project("p1", {"H100": (16, None)}, "c"))
    return Workload(nodes(count), group, jobs, {pid: 1.0 for pid in group})


def spans(result: ReplayResult) -> dict[str, list[tuple[float, float, Outcome]]]:
    return {h.job.id: [(r.start, r.end, r.outcome) for r in h.runs] for h in result.histories}


# -- hand-checked scenarios ----------------------------------------------------------------

THREE_JOBS = [
    (job("a", 8, walltime=200, submit=0), 100.0),
    (job("b", 16, walltime=100, submit=10), 50.0),
    (job("c", 8, walltime=60, submit=20), 30.0),
]
DONE = Outcome.COMPLETED


def test_fifo_with_backfill_on_two_nodes() -> None:
    """a takes one node; b needs both and is promised a's walltime end (200); c fits the
    other node and ends (by walltime, 80) before 200, so it backfills; b starts when a ends.
    Quotas are off: with p1's quota of 16, b would wait on quota and hold no line at all."""
    result = replay(workload(THREE_JOBS), make_policy("fifo", backfill=True, quotas=False))
    assert spans(result) == {
        "a": [(0.0, 100.0, DONE)],
        "b": [(100.0, 150.0, DONE)],
        "c": [(20.0, 50.0, DONE)],
    }
    m = result.metrics
    assert (m.jobs, m.finished, m.preemptions) == (3, 3, 0)
    assert m.jct_mean == pytest.approx((100 + 140 + 30) / 3)
    assert m.jct_p50 == pytest.approx(100.0)
    assert m.wait_mean == pytest.approx((0 + 90 + 0) / 3)
    assert m.makespan == pytest.approx(150.0)
    assert m.utilisation == pytest.approx((8 * 100 + 16 * 50 + 8 * 30) / (16 * 150))


def test_fifo_without_backfill_keeps_strict_order() -> None:
    result = replay(workload(THREE_JOBS), make_policy("fifo", backfill=False, quotas=False))
    assert spans(result) == {
        "a": [(0.0, 100.0, DONE)],
        "b": [(100.0, 150.0, DONE)],
        "c": [(150.0, 180.0, DONE)],
    }


Seen = dict[float, tuple[Snapshot, CycleResult]]


def borrow_then_reclaim(
    policy: str, usage: float = 0.0, extra: Iterable[tuple[Job, float]] = ()
) -> tuple[ReplayResult, Seen]:
    """p1 borrows the whole cluster with a (16 GPUs, 1000 s of work); at 100 p2's b asks for
    its nominal 8. a is preempted with a 10 s grace and saves a checkpoint every 60 s."""
    members = (
        project("p1", {"H100": (8, None)}, "c"),
        project("p2", {"H100": (8, None)}, "c", usage=usage),
    )
    trace = [
        (job("a", 16, "p1", walltime=2000, submit=0, grace=10), 1000.0),
        (job("b", 8, "p2", walltime=100, submit=100), 50.0),
        *extra,
    ]
    seen: Seen = {}

    def look(now: Instant, snapshot: Snapshot, result: CycleResult) -> None:
        seen[now] = (snapshot, result)

    result = replay(
        workload(trace, *members),
        make_policy(policy),
        ReplayOptions(
            checkpoint_interval=Seconds(60), restart_overhead=Seconds(0), usage_period=Seconds(0)
        ),
        on_cycle=look,
    )
    return result, seen


def test_reclaim_stops_the_borrower_after_its_grace_and_requeues_its_checkpoint() -> None:
    result, seen = borrow_then_reclaim("fifo")
    a, b = result.histories
    assert [(r.start, r.end, r.outcome, r.lost) for r in a.runs] == [
        (0.0, 110.0, Outcome.PREEMPTED, 50.0),  # ran 110 s, saved 60 s
        (160.0, 1100.0, Outcome.COMPLETED, 0.0),  # 940 s of work left
    ]
    assert [(r.start, r.end) for r in b.runs] == [(110.0, 160.0)]
    assert result.metrics.preemptions == 1
    assert result.metrics.lost_gpu_seconds == pytest.approx(16 * 50)
    assert result.metrics.jct_mean == pytest.approx((1100 + 60) / 2)  # from the first submit

    at_100, decided = seen[100.0]
    assert at_100.projects[ProjectId("p1")].usage.gpu_seconds == pytest.approx(16 * 100)
    assert [p.job for p in decided.preemptions] == ["a"]
    requeued = next(j for j in seen[110.0][0].pending if j.id == "a")
    assert requeued.attained == pytest.approx(16 * 110)
    assert requeued.submit_time == 0.0  # it keeps its place in line


def test_during_its_grace_a_victim_keeps_its_gpus_and_shows_when_it_stops() -> None:
    late = (job("c", 1, "p2", walltime=100, submit=105), 10.0)
    result, seen = borrow_then_reclaim("fifo", extra=[late])
    at_105, decided = seen[105.0]
    assert [(r.job.id, r.stopping_at) for r in at_105.running] == [("a", 110.0)]
    assert decided.admissions == ()
    assert result.histories[2].runs[0].start >= 110.0


@pytest.mark.parametrize("policy", list(POLICIES))
def test_reclaimed_gpus_go_to_the_reclaiming_job(policy: str) -> None:
    """Once the borrower has stopped, the job that reclaimed its nominal quota gets the GPUs,
    whatever the policy's order (quota rule Q5). Here the requeued borrower was submitted
    first, and p2 has used far more than p1, so every policy would rank the borrower first.
    Without Q5 the borrower took the GPUs back at once, and replays livelocked: victims were
    reclaimed again after their minimum runtime, losing all work since their checkpoint."""
    result, _ = borrow_then_reclaim(policy, usage=1e9)
    b = result.histories[1]
    assert b.runs[0].start == 110.0


def test_a_job_whose_own_end_comes_within_its_grace_completes() -> None:
    members = (project("p1", {"H100": (8, None)}, "c"), project("p2", {"H100": (8, None)}, "c"))
    trace = [
        (job("a", 16, "p1", walltime=2000, submit=0, grace=10), 105.0),
        (job("b", 8, "p2", walltime=100, submit=100), 50.0),
    ]
    result = replay(workload(trace, *members), make_policy("fifo"))
    assert spans(result) == {"a": [(0.0, 105.0, DONE)], "b": [(105.0, 155.0, DONE)]}
    assert result.metrics.preemptions == 0


def test_a_job_that_outlives_its_walltime_is_killed_and_not_requeued() -> None:
    result = replay(workload([(job("a", 8, walltime=100), 500.0)]), make_policy("fifo"))
    assert spans(result) == {"a": [(0.0, 100.0, Outcome.TIMEOUT)]}
    assert (result.metrics.finished, result.metrics.timed_out) == (1, 1)


def test_a_job_that_can_never_run_does_not_stall_the_replay() -> None:
    trace = [(job("huge", 64, submit=0), 10.0), (job("ok", 8, submit=5), 10.0)]
    result = replay(workload(trace), make_policy("fifo"))
    huge, ok = result.histories
    assert huge.runs == () and not huge.finished
    assert [(r.start, r.end) for r in ok.runs] == [(5.0, 15.0)]
    assert (result.metrics.jobs, result.metrics.finished) == (2, 1)


def test_checkpoint_interval_must_be_positive() -> None:
    with pytest.raises(InvalidRequest, match="checkpoint interval"):
        replay(
            workload(THREE_JOBS), make_policy("fifo"), ReplayOptions(checkpoint_interval=Seconds(0))
        )


def test_duplicate_job_ids_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="twice"):
        replay(workload([THREE_JOBS[0], THREE_JOBS[0]]), make_policy("fifo"))


# -- generated workloads -------------------------------------------------------------------

GENERATED = WorkloadSpec(jobs=120, nodes=6)


@pytest.fixture(scope="module")
def generated() -> Workload:
    return generate(GENERATED, seed=3)


class GpuLedger:
    """A cycle hook that fails if two jobs ever hold the same GPU at one event time."""

    def __init__(self) -> None:
        self.cycles = 0

    def __call__(self, now: Instant, snapshot: Snapshot, result: CycleResult) -> None:
        self.cycles += 1
        holders: dict[tuple[str, int], str] = {}
        pending = {j.id: j for j in snapshot.pending}
        held = [(r.job.id, r.allocation) for r in snapshot.running]
        for admission in result.admissions:
            assert admission.allocation.gpus == pending[admission.job].gpus
            held.append((admission.job, admission.allocation))
        for jid, allocation in held:
            for node, indices in allocation.parts:
                for gpu in indices:
                    other = holders.setdefault((node, gpu), jid)
                    assert other == jid, f"t={now}: {node} GPU {gpu} held by {other} and {jid}"


@pytest.mark.parametrize("policy", list(POLICIES))
def test_every_job_finishes_and_no_gpu_is_ever_shared(generated: Workload, policy: str) -> None:
    ledger = GpuLedger()
    progress: list[tuple[int, int]] = []
    result = replay(
        generated,
        make_policy(policy),
        on_cycle=ledger,
        on_progress=lambda done, total: progress.append((done, total)),
    )
    assert ledger.cycles == result.cycles > 0
    assert result.metrics.finished == GENERATED.jobs
    assert all(h.runs[-1].outcome is Outcome.COMPLETED for h in result.histories)
    assert_no_overlap(result)
    assert progress[-1] == (GENERATED.jobs, GENERATED.jobs)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)


def assert_no_overlap(result: ReplayResult) -> None:
    """The same check from the recorded runs: per GPU, intervals never overlap."""
    intervals: dict[tuple[str, int], list[tuple[float, float, JobId]]] = {}
    for h in result.histories:
        for r in h.runs:
            assert r.end > r.start >= h.job.submit_time
            for node, indices in r.allocation.parts:
                for gpu in indices:
                    intervals.setdefault((node, gpu), []).append((r.start, r.end, h.job.id))
    for where, spans_ in intervals.items():
        spans_.sort()
        for (_, end, first), (start, _, second) in itertools.pairwise(spans_):
            assert end <= start, f"{where}: {first} until {end}, {second} from {start}"


def test_work_done_adds_up_to_the_true_durations(generated: Workload) -> None:
    """Completed runtime plus checkpointed runtime equals each job's true duration."""
    result = replay(
        generated, make_policy("fair-share"), ReplayOptions(checkpoint_interval=Seconds(600))
    )
    durations = {t.job.id: t.duration for t in generated.jobs}
    for h in result.histories:
        useful = sum(r.end - r.start - r.lost for r in h.runs)
        assert useful == pytest.approx(durations[h.job.id], abs=1e-6)


def test_same_inputs_same_result(generated: Workload) -> None:
    policy = make_policy("las")
    assert replay(generated, policy) == replay(generated, policy)


def test_a_replay_is_identical_across_processes_and_hash_seeds() -> None:
    """No result may depend on set or dict order of strings, which changes per process."""
    script = (
        "import json, dataclasses; from kizuna.simulation import *;"
        "from kizuna.scheduling import make_policy;"
        "w = generate(WorkloadSpec(jobs=60, nodes=4), 9);"
        "r = replay(w, make_policy('fair-share'));"
        "print(json.dumps([dataclasses.asdict(r.metrics),"
        " [[(x.start, x.end, x.allocation.parts) for x in h.runs] for h in r.histories]]))"
    )
    outputs = [_run(script, seed) for seed in ("1", "2")]
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0])[0]["finished"] == 60


def _run(script: str, hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_a_replay_collects_garbage_less_often_and_sets_the_collector_back() -> None:
    """The young generation is collected after YOUNG_COLLECTION_AFTER allocations while a
    replay runs, and the process's thresholds are as they were once it returns or fails."""
    before = gc.get_threshold()
    during: list[tuple[int, int, int]] = []
    replay(
        workload(THREE_JOBS),
        make_policy("fifo"),
        on_cycle=lambda *_: during.append(gc.get_threshold()),
    )
    assert during and all(t[0] >= YOUNG_COLLECTION_AFTER for t in during)
    assert gc.get_threshold() == before

    def fail(*_: object) -> None:
        raise RuntimeError("a hook that fails")

    with pytest.raises(RuntimeError):
        replay(workload(THREE_JOBS), make_policy("fifo"), on_cycle=fail)
    assert gc.get_threshold() == before
