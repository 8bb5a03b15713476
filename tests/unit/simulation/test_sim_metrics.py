"""What a replay measured (M1-M8), on tiny histories whose numbers are worked out by hand."""

from __future__ import annotations

import math

import pytest

from kizuna.kernel.ids import GpuType, NodeId
from kizuna.kernel.units import Instant, Seconds
from kizuna.scheduling.model import Allocation
from kizuna.scheduling.testing import job
from kizuna.simulation.metrics import (
    JobHistory,
    Metrics,
    Outcome,
    ProjectShare,
    Run,
    Spread,
    entitlements,
    jain,
    percentile,
    summarize,
)
from kizuna.simulation.timeline import Timeline

H100 = GpuType("H100")
HOUR = 3600.0
DONE, TIMEOUT, STOPPED = Outcome.COMPLETED, Outcome.TIMEOUT, Outcome.PREEMPTED


def held(gpus: int) -> Allocation:
    return Allocation(((NodeId("h100-0000"), tuple(range(gpus))),))


def run(start: float, end: float, gpus: int, outcome: Outcome, lost: float = 0.0) -> Run:
    return Run(Instant(start), Instant(end), held(gpus), outcome, Seconds(lost))


def timeline(*steps: tuple[float, int]) -> Timeline:
    """H100 capacity as (from, GPUs) steps; busy and waiting do not enter the metrics."""
    out = Timeline((H100,))
    for at, gpus in steps:
        out.add(at, {}, {H100: gpus}, 0, 0)
    return out


# -- percentiles, spreads, Jain's index -------------------------------------------------------


def test_percentile_interpolates_between_closest_ranks() -> None:
    """M5, numpy's default: [1, 2, 3, 4] at 0.5 is rank 1.5 -> 2.5; at 0.95 rank 2.85 ->
    3 + 0.85 = 3.85."""
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0.5) == pytest.approx(2.5)
    assert percentile(values, 0.95) == pytest.approx(3.85)
    assert (percentile(values, 0.0), percentile(values, 1.0)) == (1.0, 4.0)
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([], 0.5) == 0.0


def test_spread_of_sorts_its_values() -> None:
    """[4, 1, 3, 2]: mean 2.5; p50 2.5; p95 3.85; p99 rank 2.97 -> 3.97."""
    spread = Spread.of([4.0, 1.0, 3.0, 2.0])
    assert (spread.mean, spread.p50, spread.p95, spread.p99) == pytest.approx(
        (2.5, 2.5, 3.85, 3.97)
    )


def test_spread_of_nothing_is_zero() -> None:
    assert Spread.of([]) == Spread(0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("values", "index"),
    [
        pytest.param([2.0, 2.0, 2.0], 1.0, id="equal-is-fair"),
        pytest.param([0.0, 0.0, 0.0, 5.0], 0.25, id="one-of-n-is-1/n"),
        pytest.param([1.0, 3.0], 0.8, id="one-and-three"),  # 4^2 / (2 x 10)
        pytest.param([], 1.0, id="empty"),
        pytest.param([0.0, 0.0], 1.0, id="all-zero-are-equal"),
        pytest.param([1.0, math.inf], 0.0, id="infinite-is-unfair"),
    ],
)
def test_jain(values: list[float], index: float) -> None:
    assert jain(values) == pytest.approx(index)


# -- entitlements (M8) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delivered", "demand", "shares", "entitled"),
    [
        # 5 each by shares; a asks only 2, its 3 spare go to b: 2, 8
        pytest.param(
            10.0,
            {"a": 2.0, "b": 100.0},
            {"a": 1.0, "b": 1.0},
            {"a": 2.0, "b": 8.0},
            id="capped-gives-surplus",
        ),
        # 12 by 1:2:1 -> 3, 6, 3; c asks 1, its 11 left by 1:2 -> 11/3, 22/3
        pytest.param(
            12.0,
            {"a": 100.0, "b": 100.0, "c": 1.0},
            {"a": 1.0, "b": 2.0, "c": 1.0},
            {"a": 11 / 3, "b": 22 / 3, "c": 1.0},
            id="surplus-by-shares",
        ),
        # 10 each; a capped at 2 -> 28 left, 14 each; b capped at 12 -> 16 to c
        pytest.param(
            30.0,
            {"a": 2.0, "b": 12.0, "c": 100.0},
            {"a": 1.0, "b": 1.0, "c": 1.0},
            {"a": 2.0, "b": 12.0, "c": 16.0},
            id="caps-cascade",
        ),
        # a has no shares: nothing; b is capped at 5, the other 5 go to no one
        pytest.param(
            10.0, {"a": 5.0, "b": 5.0}, {"a": 0.0, "b": 1.0}, {"a": 0.0, "b": 5.0}, id="zero-shares"
        ),
        # a has no shares entry at all: as zero shares
        pytest.param(
            10.0, {"a": 5.0, "b": 50.0}, {"b": 1.0}, {"a": 0.0, "b": 10.0}, id="missing-shares"
        ),
        # a asked for nothing: all 10 to b
        pytest.param(
            10.0,
            {"a": 0.0, "b": 20.0},
            {"a": 1.0, "b": 1.0},
            {"a": 0.0, "b": 10.0},
            id="zero-demand",
        ),
        # more delivered than asked: each gets what it asked for
        pytest.param(
            100.0, {"a": 3.0, "b": 4.0}, {"a": 1.0, "b": 1.0}, {"a": 3.0, "b": 4.0}, id="all-capped"
        ),
        pytest.param(0.0, {"a": 3.0}, {"a": 1.0}, {"a": 0.0}, id="nothing-delivered"),
        pytest.param(5.0, {}, {"a": 1.0}, {}, id="no-demand"),
    ],
)
def test_entitlements_water_fill_by_shares_capped_by_demand(
    delivered: float,
    demand: dict[str, float],
    shares: dict[str, float],
    entitled: dict[str, float],
) -> None:
    assert entitlements(delivered, demand, shares) == pytest.approx(entitled)


def test_ratio_of_received_over_entitled() -> None:
    assert ProjectShare("p", 1, 10.0, 3.0, 2.0).ratio == 1.5
    assert ProjectShare("p", 0, 0.0, 0.0, 0.0).ratio == 1.0
    assert ProjectShare("p", 1, 0.0, 1.0, 0.0).ratio == math.inf


# -- job histories ----------------------------------------------------------------------------


def test_a_history_is_finished_unless_its_last_run_was_preempted() -> None:
    j = job("a", 1, walltime=60.0)
    assert not JobHistory(j, ()).finished
    assert JobHistory(j, ()).end is None
    assert not JobHistory(j, (run(0, 5, 1, STOPPED),)).finished
    cut = JobHistory(j, (run(0, 5, 1, STOPPED), run(9, 69, 1, TIMEOUT)), duration=100.0)
    assert (cut.finished, cut.end) == (True, 69.0)
    assert cut.runtime == 60.0  # the trace's 100 s, cut at the walltime


def test_a_run_holds_its_gpus_times_its_length() -> None:
    assert run(10, 40, 4, DONE).held == 120.0


# -- summarize (M1-M8) ------------------------------------------------------------------------

HISTORIES = (
    # a: 8 GPUs, submit 0, runs 0-100 and completes; runtime 100
    JobHistory(job("a", 8, "p1", walltime=200, submit=0), (run(0, 100, 8, DONE),), 100.0),
    # b: 4 GPUs, submit 10, 100 s of work but a 60 s walltime: runs 20-80, killed; runtime 60
    JobHistory(job("b", 4, "p1", walltime=60, submit=10), (run(20, 80, 4, TIMEOUT),), 100.0),
    # c: 1 GPU, submit 50, 5 s of work: preempted at 52 losing 2 s, then runs 60-65; runtime 5
    JobHistory(
        job("c", 1, "p2", walltime=60, submit=50),
        (run(50, 52, 1, STOPPED, lost=2.0), run(60, 65, 1, DONE)),
        5.0,
    ),
    # d: 16 GPUs, submit 30, 100 s of work, never started
    JobHistory(job("d", 16, "p2", walltime=200, submit=30), (), 100.0),
)
CAPACITY = timeline((0.0, 16), (50.0, 24))
"""16 GPUs over [0, 50), 24 from 50 on: 16 x 50 + 24 x 50 = 2000 GPU-seconds over [0, 100)."""


@pytest.fixture(scope="module")
def metrics() -> Metrics:
    return summarize(HISTORIES, CAPACITY, {"p1": 1.0, "p2": 1.0, "p3": 1.0})


def test_counts(metrics: Metrics) -> None:
    """a, b, c finished (b at its walltime); d never started; c was preempted once."""
    assert (metrics.jobs, metrics.finished, metrics.timed_out) == (4, 3, 1)
    assert (metrics.never_started, metrics.preemptions) == (1, 1)


def test_jct_wait_and_bounded_slowdown(metrics: Metrics) -> None:
    """M1 JCT: a 100 - 0 = 100, b 80 - 10 = 70, c 65 - 50 = 15 (from its first submit).
    M2 wait: a 0; b 70 - 60 = 10; c 15 - (2 + 5) = 8.
    M6 slowdown: a 100/100 = 1; b 70/60; c 15 / max(5, 10 s floor) = 1.5 (not 15/5 = 3)."""
    jct = metrics.jct
    # p95: rank 1.9 -> 70 + 30 x 0.9 = 97; p99: rank 1.98 -> 70 + 30 x 0.98 = 99.4
    assert (jct.mean, jct.p50, jct.p95, jct.p99) == pytest.approx((185 / 3, 70.0, 97.0, 99.4))
    assert (metrics.jct_mean, metrics.jct_p50, metrics.jct_p95) == pytest.approx((185 / 3, 70, 97))
    assert (metrics.wait.mean, metrics.wait.p50) == pytest.approx((6.0, 8.0))
    assert metrics.wait_mean == pytest.approx(6.0)
    assert metrics.slowdown.mean == pytest.approx((1.0 + 70 / 60 + 1.5) / 3)
    assert metrics.slowdown.p99 == pytest.approx(70 / 60 + (1.5 - 70 / 60) * 0.98)


def test_utilisation_against_capacity_that_changes(metrics: Metrics) -> None:
    """M3, M4: from the first submit (0) to the last end (100). Held: a 8 x 100 = 800,
    b 4 x 60 = 240, c 1 x 2 + 1 x 5 = 7 (lost work counts as held): 1047 of 2000."""
    assert metrics.makespan == 100.0
    assert metrics.utilisation == pytest.approx(1047 / 2000)
    assert metrics.utilisation_by_type == {"H100": pytest.approx(0.5235)}
    assert metrics.gpu_hours == pytest.approx(1047 / HOUR)
    assert metrics.lost_gpu_seconds == 2.0


def test_limits(metrics: Metrics) -> None:
    """M7: mean runtime of finished jobs (100 + 60 + 5) / 3 = 55. Makespan bound: work asked
    8 x 100 + 4 x 60 + 1 x 5 + 16 x 100 = 2645 GPU-s over 2000 / 100 = 20 mean GPUs is
    132.25 s, more than the latest arrival plus runtime (d: 30 + 100 = 130)."""
    assert metrics.jct_mean_bound == pytest.approx(55.0)
    assert metrics.makespan_bound == pytest.approx(132.25)


def test_projects_and_fairness(metrics: Metrics) -> None:
    """M8 in GPU-hours (x 3600 below). p1 asked 800 + 240 = 1040 and got 1040; p2 asked
    5 + 1600 = 1605 and got 7; p3 has no jobs. Delivered 1047, halved between p1 and p2 (p3
    asks nothing): 523.5 each, neither capped. Jain over p1, p2 (p3 is entitled to nothing):
    1047^2 / (2 x (1040^2 + 7^2)) = 1096209 / 2163298."""
    p1, p2, p3 = metrics.projects
    assert (p1.project, p1.jobs, p1.demand * HOUR, p1.received * HOUR) == pytest.approx(
        ("p1", 2, 1040.0, 1040.0)
    )
    assert (p2.project, p2.jobs, p2.demand * HOUR, p2.received * HOUR) == pytest.approx(
        ("p2", 2, 1605.0, 7.0)
    )
    assert (p1.entitled * HOUR, p2.entitled * HOUR) == pytest.approx((523.5, 523.5))
    assert (p3.project, p3.jobs, p3.demand, p3.received, p3.entitled) == ("p3", 0, 0, 0, 0)
    assert metrics.jain == pytest.approx(1096209 / 2163298)


def test_a_project_without_shares_is_listed_and_entitled_to_nothing() -> None:
    """p2 is not in `shares`: all 1047 delivered go to p1 up to its 1040 asked; p2, entitled
    to nothing, leaves Jain's index (p1 alone: 1)."""
    metrics = summarize(HISTORIES, CAPACITY, {"p1": 1.0})
    p1, p2 = metrics.projects
    assert (p1.entitled * HOUR, p2.entitled) == pytest.approx((1040.0, 0.0))
    assert p2.jobs == 2
    assert metrics.jain == 1.0


def test_makespan_bound_by_the_latest_arrival() -> None:
    """One 1-GPU job submitted at 1000 runs 10 s on 8 GPUs: the work bound is 10 / 8 s, the
    arrival bound 1000 + 10 - 1000 = 10 s."""
    history = JobHistory(job("a", 1, submit=1000.0), (run(1000, 1010, 1, DONE),), 10.0)
    metrics = summarize([history], timeline((0.0, 8)), {"p1": 1.0})
    assert metrics.makespan == 10.0
    assert metrics.makespan_bound == pytest.approx(10.0)
    assert metrics.utilisation == pytest.approx(10 / 80)  # 8 GPUs over [1000, 1010)


def test_a_job_preempted_last_is_neither_finished_nor_never_started() -> None:
    history = JobHistory(job("a", 2), (run(0, 30, 2, STOPPED, lost=30.0),), 100.0)
    metrics = summarize([history], timeline((0.0, 8)), {"p1": 1.0})
    assert (metrics.finished, metrics.never_started, metrics.preemptions) == (0, 0, 1)
    assert metrics.jct == Spread()
    assert metrics.lost_gpu_seconds == 60.0
    assert metrics.utilisation == pytest.approx(60 / 240)  # 2 x 30 of 8 x 30


def test_nothing_to_summarize() -> None:
    metrics = summarize([], Timeline((H100,)), {})
    assert (metrics.jobs, metrics.makespan, metrics.utilisation) == (0, 0.0, 0.0)
    assert (metrics.makespan_bound, metrics.jct_mean_bound, metrics.jain) == (0.0, 0.0, 1.0)
    assert metrics.projects == ()
