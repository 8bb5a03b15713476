"""Every pending job gets exactly one outcome, malformed jobs are refused, and a cycle is a
function of its snapshot: the same input, in any order, gives the same decisions."""

from __future__ import annotations

from random import Random

from hypothesis import example, given, settings
from hypothesis import strategies as st
from strategies import NOW, Case, cases

from kizuna.scheduling import (
    ClusterShape,
    CycleResult,
    ReasonCode,
    Snapshot,
    make_policy,
    run_cycle,
    validate_job,
)
from kizuna.scheduling.testing import job, nodes, project, projects


def _cycle(case: Case) -> CycleResult:
    return run_cycle(case.snapshot, case.policy, case.now)


@settings(max_examples=250, deadline=None)
@given(cases())
def test_every_pending_job_is_admitted_or_has_a_reason(case: Case) -> None:
    """Admitted xor waiting with a reason; nothing is said about jobs that are not pending;
    preemptions name running jobs and are made for jobs that now wait for them."""
    result = _cycle(case)
    pending = [j.id for j in case.snapshot.pending]
    admitted = [a.job for a in result.admissions]
    assert len(admitted) == len(set(admitted)), f"a job admitted twice: {admitted}"
    assert set(admitted).isdisjoint(result.reasons), "admitted and given a reason"
    assert set(admitted) | set(result.reasons) == set(pending)
    assert sorted(result.order) == sorted(pending)
    running = {r.job.id for r in case.snapshot.running}
    victims = [p.job for p in result.preemptions]
    assert len(victims) == len(set(victims)), f"a job preempted twice: {victims}"
    assert set(victims) <= running
    for p in result.preemptions:
        assert result.reasons[p.for_job].code is ReasonCode.RECLAIMING


def _zero_gpu_job_under_fair_share() -> Case:
    """Fair-share alone with a job asking for 0 GPUs: expected INVALID, the cycle raises
    ZeroDivisionError (the size factor divides by the largest pending gang)."""
    snapshot = Snapshot(nodes(1), (), (job("z", gpus=0),), projects(project("p1")))
    return Case(snapshot, make_policy("fair-share"), NOW)


def _same_shape_valid_then_malformed(malformed_first: bool) -> Case:
    """Two 8-GPU jobs, one with walltime 0: the cycle validates the first considered and
    reuses its verdict for the second (the memo key leaves walltime out), so either the
    malformed job is admitted or the valid one is refused as INVALID."""
    good = job("good", submit=1.0 if malformed_first else 0.0)
    bad = job("bad", walltime=0.0, submit=0.0 if malformed_first else 1.0)
    owners = projects(project("p1", {"H100": (16, None)}))
    snapshot = Snapshot(nodes(2), (), (good, bad), owners)
    return Case(snapshot, make_policy("fifo"), NOW)


@settings(max_examples=250, deadline=None)
@example(case=_zero_gpu_job_under_fair_share())
@example(case=_same_shape_valid_then_malformed(malformed_first=False))
@example(case=_same_shape_valid_then_malformed(malformed_first=True))
@given(cases())
def test_jobs_validation_rejects_are_invalid_and_never_admitted(case: Case) -> None:
    """What can never run on this cluster (counting nodes that are down) is refused with
    INVALID at once, and INVALID is kept for exactly those jobs."""
    result = _cycle(case)
    cluster = ClusterShape.of(case.snapshot.nodes)
    for waiting in case.snapshot.pending:
        problems = validate_job(waiting, cluster)
        reason = result.reasons.get(waiting.id)
        if problems:
            assert waiting.id not in result.admitted()
            assert reason is not None and reason.code is ReasonCode.INVALID, (waiting, reason)
        else:
            assert reason is None or reason.code is not ReasonCode.INVALID, (waiting, reason)


def _content(result: CycleResult) -> tuple[object, ...]:
    """Everything a cycle decided, as plain values (the result's own fields may be lazy)."""
    return (
        result.admissions,
        result.preemptions,
        dict(result.reasons),
        result.shadows,
        tuple(result.order),
    )


def _one_job() -> Case:
    owners = projects(project("p1", {"H100": (8, None)}))
    return Case(Snapshot(nodes(1), (), (job("a"),), owners), make_policy("fifo"), NOW)


@settings(max_examples=150, deadline=None)
@example(case=_one_job(), rng=Random(0))
@given(cases(), st.randoms(use_true_random=False))
def test_same_snapshot_gives_the_same_result(case: Case, rng: Random) -> None:
    """Pure and deterministic: running the cycle again, or on the pending and running jobs
    listed in another order, changes nothing (every ordering ends in a unique tie-break);
    and two results of the same cycle compare equal, as values should."""
    first = _cycle(case)
    again = _cycle(case)
    assert _content(again) == _content(first)
    pending, running = list(case.snapshot.pending), list(case.snapshot.running)
    rng.shuffle(pending)
    rng.shuffle(running)
    shuffled = Snapshot(
        case.snapshot.nodes,
        tuple(running),
        tuple(pending),
        case.snapshot.projects,
        case.snapshot.reservations,
    )
    assert _content(run_cycle(shuffled, case.policy, case.now)) == _content(first)
    assert again == first, "equal decisions, yet the two CycleResults compare unequal"
