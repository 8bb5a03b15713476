"""Reclaim (R1-R5): a project gets its nominal quota back by preempting the fewest, least
important, most recently started borrowed jobs of its cohort, and never more than needed."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from kizuna.kernel.ids import CohortId, GpuType, JobId
from kizuna.kernel.units import Instant
from kizuna.scheduling import (
    CycleResult,
    Job,
    Project,
    ReasonCode,
    RunningJob,
    Scheduler,
    Snapshot,
    make_policy,
    run_cycle,
)
from kizuna.scheduling.cycle import walk
from kizuna.scheduling.model import HIGH, LOW
from kizuna.scheduling.occupancy import Occupancy
from kizuna.scheduling.queue import Queue
from kizuna.scheduling.testing import job, nodes, project, projects, running

NOW = 1000.0


def cohort(*quotas: tuple[str, int]) -> list[Project]:
    """Projects of cohort c with the given nominal H100 quotas, no borrowing limit."""
    return [project(p, quotas={"H100": (n, None)}, cohort="c") for p, n in quotas]


def on(node: int, j: Job, start: float = 0.0, stopping_at: float | None = None) -> RunningJob:
    """`j` on the first `j.gpus` GPUs of node `node`."""
    return running(j, start, {f"h100-{node:04d}": range(j.gpus)}, stopping_at)


def cycle(
    tenants: Sequence[Project],
    active: Sequence[RunningJob],
    pending: Sequence[Job],
    count: int = 2,
    now: float = NOW,
) -> CycleResult:
    snapshot = Snapshot(nodes(count), tuple(active), tuple(pending), projects(*tenants))
    return run_cycle(snapshot, make_policy("fifo"), Instant(now))


TWO = cohort(("p1", 8), ("p2", 8))
"""p1 and p2 each hold a nominal 8 of a 16-GPU cohort; p2 borrows when it runs 16."""


@pytest.mark.parametrize(
    ("a", "b", "victim"),
    [
        pytest.param(
            job("a", project="p2"), job("b", project="p2"), "b", id="most-recently-started"
        ),
        pytest.param(
            job("a", project="p2", priority=LOW),
            job("b", project="p2"),
            "a",
            id="lowest-priority-before-recency",
        ),
        pytest.param(
            job("a", project="p2"),
            job("b", project="p2", priority=HIGH),
            "a",
            id="high-priority-spared",
        ),
        pytest.param(
            job("a", project="p2"),
            job("b", project="p2", min_runtime=NOW),
            "a",
            id="min-runtime-not-reached",
        ),
        pytest.param(
            job("a", project="p2"),
            job("b", project="p2", min_runtime=NOW - 100.0),
            "b",
            id="min-runtime-reached",
        ),
        pytest.param(
            job("a", project="p2"),
            job("b", project="p2", preemptible=False),
            "a",
            id="non-preemptible-spared",
        ),
    ],
)
def test_victim_choice(a: Job, b: Job, victim: str) -> None:
    """`a` started at 0, `b` at 100; p2 borrows 8 of its 16 GPUs; p1 wants its nominal 8."""
    result = cycle(TWO, [on(0, a), on(1, b, start=100.0)], [job("j")])
    assert result.preempted() == {victim}
    assert result.reasons[JobId("j")].code is ReasonCode.RECLAIMING


def test_preemption_carries_grace_and_who_for() -> None:
    active = [on(0, job("a", project="p2")), on(1, job("b", project="p2", grace=120.0), 100.0)]
    result = cycle(TWO, active, [job("j")])
    (preemption,) = result.preemptions
    assert (preemption.job, preemption.for_job, preemption.grace) == ("b", "j", 120.0)
    assert "project p1 needs its nominal H100 quota for job j" in preemption.reason
    assert "project p2 was borrowing" in preemption.reason
    assert result.reasons[JobId("j")].earliest_start == NOW + 120.0


def test_only_borrowing_projects_are_preempted() -> None:
    """p2 runs within its nominal quota (and started last); p3 borrows: p3's job goes."""
    tenants = cohort(("p1", 8), ("p2", 8), ("p3", 0))
    active = [on(0, job("mine", project="p2"), 200.0), on(1, job("lent", project="p3"))]
    result = cycle(tenants, active, [job("j")])
    assert result.preempted() == {"lent"}


@pytest.mark.parametrize(
    ("tenants", "pending"),
    [
        pytest.param(cohort(("p1", 8), ("p2", 16)), [job("j")], id="no-one-borrows"),
        pytest.param(
            [project("p1", quotas={"H100": (8, None)}), *cohort(("p2", 0))],
            [job("j")],
            id="other-cohort",
        ),
        pytest.param(
            cohort(("p1", 8), ("p2", 8), ("p3", 16)),
            [job("j", gpus=16)],
            id="borrowing-job-may-not-reclaim",
        ),
    ],
)
def test_no_preemption(tenants: list[Project], pending: list[Job]) -> None:
    """p2 runs `a` and `b` on both nodes; the pending job must wait for their walltime."""
    active = [on(0, job("a", project="p2")), on(1, job("b", project="p2"), 100.0)]
    result = cycle(tenants, active, pending)
    assert result.preemptions == ()
    assert result.reasons[pending[0].id].code is ReasonCode.RESOURCES


def test_minimal_set_drops_a_victim_that_does_not_help() -> None:
    """`small` (4 GPUs, newest) is tried first but cannot make room alone; once `big` is
    added the gang fits without `small`, so only `big` is preempted (R5)."""
    tenants = cohort(("p1", 8), ("p2", 4), ("p3", 4))
    active = [
        on(0, job("small", 4, project="p2"), 200.0),
        running(job("keep", 4, project="p3"), 0.0, {"h100-0000": range(4, 8)}),
        on(1, job("big", 8, project="p2"), 100.0),
    ]
    result = cycle(tenants, active, [job("j")])
    assert result.preempted() == {"big"}
    assert "1 borrowing job preempted" in result.reasons[JobId("j")].message


def test_takes_several_victims_when_one_is_not_enough() -> None:
    tenants = cohort(("p1", 16), ("p2", 0))
    active = [on(0, job("a", project="p2")), on(1, job("b", project="p2"), 100.0)]
    result = cycle(tenants, active, [job("j", gpus=16)])
    assert result.preempted() == {"a", "b"}
    assert "2 borrowing jobs preempted" in result.reasons[JobId("j")].message


def test_two_owed_projects_reclaim_different_victims_in_one_cycle() -> None:
    """p1 and p3 are both owed their nominal 8 while p2 (nominal 0) borrows 16: each gets one
    of p2's jobs back, and no victim serves twice. Taking `a` for j3 cannot delay j1, whose
    promised placement is on `b`'s node."""
    tenants = cohort(("p1", 8), ("p3", 8), ("p2", 0))
    active = [on(0, job("a", project="p2")), on(1, job("b", project="p2"), 100.0)]
    pending = [job("j1", submit=0), job("j3", project="p3", submit=1)]
    result = cycle(tenants, active, pending)
    victims = [(p.job, p.for_job) for p in result.preemptions]
    assert sorted(victims) == [("a", "j3"), ("b", "j1")]


def test_waits_on_a_stopping_victim_instead_of_preempting_more() -> None:
    """Cycle 1 preempts `b`; in cycle 2 `b` is stopping: no new victim, still RECLAIMING."""
    a, b = job("a", project="p2", grace=300.0), job("b", project="p2", grace=300.0)
    first = cycle(TWO, [on(0, a), on(1, b, 100.0)], [job("j")])
    assert first.preempted() == {"b"}
    stop = NOW + 300.0
    second = cycle(TWO, [on(0, a), on(1, b, 100.0, stopping_at=stop)], [job("j")], now=NOW + 60)
    assert second.preemptions == ()
    got = second.reasons[JobId("j")]
    assert got.code is ReasonCode.RECLAIMING
    assert got.earliest_start == stop
    assert "preempted jobs to give back 8 H100" in got.message


def test_gpus_kept_for_a_job_are_its_own_though_its_project_failed_to_reclaim() -> None:
    """R6: the 6 GPUs of r0, preempted for j2, are kept for j2. Jobs of j2's project and
    shape ahead of it fail to reclaim, which must not refuse j2 by the reclaimer's memo of
    failures: it has GPUs they do not (found by the property tests, fixed 2026-11-27)."""
    now = 1_000_000.0
    tenants = [*cohort(("p0", 4), ("p1", 4), ("p2", 4)), *cohort(("p3", 8))]
    tenants = [dataclasses.replace(p, cohort=CohortId("c0")) for p in tenants]
    kept = running(
        job("r0", gpus=6, project="p1", submit=0.0), 998_200.0, {"h100-0000": range(6)}, now
    )
    active = [
        dataclasses.replace(kept, stopping_for=JobId("j2")),
        running(job("r1", gpus=1, project="p0"), 998_200.0, {"h100-0000": [6]}),
    ]
    pending = [
        job("j21", gpus=8, project="p3", walltime=1800.0, submit=995_200.0),
        job("j17", gpus=2, project="p0", walltime=1800.0, submit=997_600.0),
        job("j20", gpus=2, project="p0", walltime=1800.0, submit=now, one_domain=True),
        *(
            job(f"j{n}", gpus=1, project="p0", walltime=1800.0, submit=now)
            for n in (*range(17), 18, 19, 22, 23)
        ),
    ]
    result = cycle(tenants, active, pending, now=now)
    assert result.reasons["j2"].code is ReasonCode.RECLAIMING


def test_a_failed_reclaim_of_one_shape_does_not_refuse_another_shape_of_its_size() -> None:
    """k1 (2 nodes x 2) heads the line and fails to reclaim; k2, of p3 too and of the same
    size but in one NVLink domain, can reclaim r0's GPUs (p0 borrows once its eight 1-GPU
    jobs start). The walk passes jobs over by the failures of their own shape only
    (`_Cycle._acts_below`, ADR 0024)."""
    now = 1_000_000.0
    tenants = [
        project(p, quotas={"H100": (4, None)}, cohort="c0") for p in ("p0", "p1", "p2", "p3")
    ]
    big, small = nodes(1, gpus=8), nodes(1, gpus=4, prefix="h100-s")
    shared = dataclasses.replace(small[0], nvlink_domain=big[0].nvlink_domain)
    active = [
        running(
            job("r0", gpus=2, per_node=1, project="p0", submit=998_140.0),
            998_200.0,
            {big[0].id: [0], shared.id: [0]},
        ),
        running(
            job("r1", gpus=2, project="p1", submit=998_140.0),
            998_200.0,
            {big[0].id: [1, 2]},
            stopping_at=now,
        ),
    ]
    pending = [
        *(job(f"j{n}", gpus=1, project="p0", walltime=1800.0, submit=now) for n in range(8)),
        job("k1", gpus=4, per_node=2, project="p3", walltime=1800.0, submit=now),
        job("k2", gpus=4, one_domain=True, project="p3", walltime=1800.0, submit=now),
    ]
    snapshot = Snapshot((big[0], shared), tuple(active), tuple(pending), projects(*tenants))
    result = run_cycle(snapshot, make_policy("fifo"), Instant(now))
    assert result.reasons[JobId("k1")].code is ReasonCode.RESOURCES
    assert result.reasons[JobId("k2")].code is ReasonCode.RECLAIMING
    assert [(p.job, p.for_job) for p in result.preemptions] == [("r0", "k2")]


def _two_cycles(first: Snapshot, second: Snapshot, now: float, later: float) -> CycleResult:
    """The second cycle of a `Scheduler` that ran the first, checked against a fresh
    `run_cycle` on the second snapshot."""
    policy = make_policy("fifo")
    scheduler = Scheduler(policy)
    scheduler.cycle(first, Instant(now))
    kept = scheduler.cycle(second, Instant(later))
    fresh = run_cycle(second, policy, Instant(later))
    assert kept.preemptions == fresh.preemptions
    assert dict(kept.reasons) == dict(fresh.reasons)
    return kept


def test_a_refusal_kept_across_cycles_ends_when_a_borrower_starts() -> None:
    """Cycle 1: j (p1, within its nominal 8) finds no borrowed job to reclaim (p2 runs
    within its quota, p3 is in no cohort). Cycle 2: p3's job ended and a job of p2 took its
    GPUs, borrowing: j reclaims it, though nothing else changed (rules K1-K3)."""
    tenants = [*cohort(("p1", 8), ("p2", 8)), project("p3", quotas={"H100": (8, None)})]
    b = on(1, job("b", project="p2"), 100.0)
    pending = (job("j", submit=500.0),)
    first = Snapshot(
        nodes(2), (on(0, job("a", project="p3"), 200.0), b), pending, projects(*tenants)
    )
    second = dataclasses.replace(first, running=(on(0, job("c", project="p2"), 900.0), b))
    result = _two_cycles(first, second, NOW, NOW + 60.0)
    assert result.preempted() == {"c"}
    assert result.reasons[JobId("j")].code is ReasonCode.RECLAIMING


def test_a_refusal_kept_across_cycles_ends_when_a_borrower_passes_its_minimum_runtime() -> None:
    """Cycle 1: p2 borrows 8 GPUs, but both its jobs are within their 10-minute minimum
    runtime (R3), so j finds no victim. Cycle 2, the same snapshot 10 minutes later: both may
    be preempted, and j reclaims one."""
    a = on(0, job("a", project="p2", min_runtime=600.0), NOW - 60.0)
    b = on(1, job("b", project="p2", min_runtime=600.0), NOW - 120.0)
    snapshot = Snapshot(nodes(2), (a, b), (job("j", submit=500.0),), projects(*TWO))
    result = _two_cycles(snapshot, snapshot, NOW, NOW + 600.0)
    assert result.preempted() == {"a"}
    assert result.reasons[JobId("j")].code is ReasonCode.RECLAIMING


def test_a_project_s_victims_kept_across_cycles_follow_its_running_jobs() -> None:
    """Cycle 1: p2 borrows 4 GPUs with a1 and a2; k (p1, a whole node) finds no room even
    preempting a2, p2's most recent job. Then a2 ends and a3, as large, starts on its GPUs:
    p2 uses as many GPUs as before. Cycle 2: j (p1, 8 GPUs in any split) reclaims a3, not
    a2, which no longer runs: anything a `Scheduler` carries over of a project's victims
    must follow its running jobs, not only its usage (a memo keyed on usage fails here)."""
    tenants = cohort(("p1", 12), ("p2", 4))
    a1 = running(job("a1", gpus=4, project="p2"), 0.0, {"h100-0000": range(4)})
    a2 = running(job("a2", gpus=4, project="p2"), 10.0, {"h100-0000": range(4, 8)})
    bx = on(1, job("bx", gpus=4, project="p1"))
    k = job("k", gpus=8, per_node=8, project="p1", submit=500.0)
    first = Snapshot(nodes(2), (a1, a2, bx), (k,), projects(*tenants))
    a3 = running(job("a3", gpus=4, project="p2"), NOW + 30.0, {"h100-0000": range(4, 8)})
    j = job("j", gpus=8, project="p1", submit=600.0)
    second = dataclasses.replace(first, running=(a1, a3, bx), pending=(j,))
    assert run_cycle(first, make_policy("fifo"), Instant(NOW)).preemptions == ()
    result = _two_cycles(first, second, NOW, NOW + 60.0)
    assert result.preempted() == {"a3"}


def test_the_releases_a_head_counts_on_skip_gpus_kept_for_another_and_end_victims_early() -> None:
    """w (p1) has s's GPUs kept for it (R6: s was preempted for w and is stopping) and
    reclaims c, which stops after its grace period. The releases any job's promise counts
    on are the running jobs' own, but: s's only for w, and c's at its stop, not its end."""
    tenants = cohort(("p1", 8), ("p2", 8))
    s = running(job("s", gpus=4, project="p2"), 0.0, {"h100-0000": range(4)}, NOW + 120.0)
    s = dataclasses.replace(s, stopping_for=JobId("w"))
    b = running(job("b", gpus=4, project="p2"), 500.0, {"h100-0000": range(4, 8)})
    c = on(1, job("c", project="p2", walltime=7200.0), 600.0)
    w, other = job("w", project="p1", submit=700.0), job("o", gpus=1, project="p2")
    snapshot = Snapshot(nodes(2), (s, b, c), (w,), projects(*tenants))
    policy = make_policy("fifo")
    walked = walk(
        Occupancy.of(snapshot), Queue.of(policy, snapshot, Instant(NOW)), policy, Instant(NOW)
    )
    assert walked.result().preempted() == {"c"}
    state = walked.types[GpuType("H100")]
    assert state.owner_of == {"s": "w"} and set(state.stops) == {"c"}

    def plainly(j: Job) -> list[tuple[float, int, int, str]]:
        """The definition: kept GPUs only for their job, victims' at their stop."""
        return sorted(
            (min(at, state.stops.get(jid, at)), i, n, jid)
            for at, i, n, jid in state.releases
            if state.owner_of.get(jid, j.id) == j.id
        )

    for j in (w, other):
        assert walked._releases(state, j) == plainly(j)
    assert [r[3] for r in walked._releases(state, other)].count("s") == 0
