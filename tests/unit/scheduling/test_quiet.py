"""Cycles answered by the walk of a quiet one (quiet.py, ADR 0026): each instant its proof
hangs on, crossed, makes the next cycle walk again and decide what `run_cycle` decides."""

from __future__ import annotations

import dataclasses

from kizuna.kernel.units import Instant
from kizuna.scheduling import PendingChanges, Scheduler, Snapshot, make_policy, run_cycle
from kizuna.scheduling.model import Job
from kizuna.scheduling.testing import job, nodes, project, projects, running

NOW = 1_000_000.0
POLICY = make_policy("fifo", backfill=True, quotas=True, budgets=False)


def refused(project: str, count: int = 8) -> tuple[Job, ...]:
    """Jobs of a project at its quota: a queue long enough to be kept between cycles."""
    return tuple(
        job(f"{project}-{k}", gpus=8, project=project, submit=NOW - 900.0) for k in range(count)
    )


def arrive(
    scheduler: Scheduler, snapshot: Snapshot, new: Job, at: float
) -> tuple[Snapshot, bool, int]:
    """`new` joins the queue at `at`: the new snapshot, whether the cycle was walked, and
    how many jobs it preempted (its result checked against `run_cycle`)."""
    after = dataclasses.replace(snapshot, pending=(*snapshot.pending, new))
    walks = scheduler.walks
    result = scheduler.cycle(after, Instant(at), PendingChanges([new], [], [], []))
    fresh = run_cycle(after, POLICY, Instant(at))
    assert result.admissions == fresh.admissions
    assert result.preemptions == fresh.preemptions
    assert result.shadows == fresh.shadows
    assert dict(result.reasons) == dict(fresh.reasons)
    return after, scheduler.walks > walks, len(result.preemptions)


def test_a_borrower_passing_its_minimum_runtime_is_reclaimed_at_the_next_arrival() -> None:
    """The owner's job waits while the borrower is younger than its minimum runtime; jobs
    that arrive meanwhile are answered without a walk, until that runtime is reached."""
    cluster = nodes(1)
    young = job("young", gpus=8, project="borrower", min_runtime=3600.0, walltime=36_000.0)
    snapshot = Snapshot(
        cluster,
        (running(young, NOW - 1800.0, {cluster[0].id: range(8)}),),
        (job("mine", gpus=8, project="owner", submit=NOW - 60.0), *refused("borrower")),
        projects(
            project("owner", {"H100": (8, 0)}, "c"),
            project("borrower", {"H100": (0, 8)}, "c"),
        ),
    )
    scheduler = Scheduler(POLICY)
    first = scheduler.cycle(snapshot, Instant(NOW), PendingChanges())
    assert not first.preemptions  # R3: not yet
    more = job("more", gpus=8, project="borrower", submit=NOW + 600.0)  # its quota refuses it
    snapshot, walked, preempted = arrive(scheduler, snapshot, more, NOW + 600.0)
    assert (walked, preempted) == (False, 0)  # answered without a walk, nothing decided
    again = job("again", gpus=8, project="borrower", submit=NOW + 1800.0)
    _, walked, preempted = arrive(scheduler, snapshot, again, NOW + 1800.0)
    assert (walked, preempted) == (True, 1)  # the owner reclaims the borrower's GPUs


def test_a_job_turning_late_for_the_heads_start_may_reclaim() -> None:
    """A job that fits now but is refused by the head's promise, once late for the head's
    start no longer fits the slack and reclaims a borrower instead: cycles are answered
    without a walk only while it is still in time."""
    cluster = nodes(3, per_domain=1)
    n0, n1, n2 = (n.id for n in cluster)
    held = (
        running(job("b", gpus=4, project="b", preemptible=False, walltime=5400.0),
                NOW - 1800.0, {n0: range(4)}),
        running(job("c", gpus=8, project="c", walltime=72_000.0), NOW - 1800.0, {n1: range(8)}),
        running(job("d", gpus=8, project="d", preemptible=False, walltime=9000.0),
                NOW - 1800.0, {n2: range(8)}),
    )  # fmt: skip
    head = job("head", gpus=16, per_node=8, project="a", submit=NOW - 600.0, walltime=3600.0)
    small = job("small", gpus=4, project="a", submit=NOW - 300.0, walltime=7000.0)
    snapshot = Snapshot(
        cluster,
        held,
        (head, small, *refused("b")),
        projects(
            project("a", {"H100": (16, 0)}, "c"),
            project("b", {"H100": (4, 0)}, "c"),
            project("c", {"H100": (0, None)}, "c"),
            project("d", {"H100": (8, 0)}, "c"),
        ),
    )
    scheduler = Scheduler(POLICY)
    first = scheduler.cycle(snapshot, Instant(NOW), PendingChanges())
    assert not first.admissions and not first.preemptions
    assert first.shadows[0].job == "head" and first.shadows[0].start == NOW + 7200.0
    more = job("b2", gpus=8, project="b", submit=NOW + 100.0)  # its quota refuses it
    snapshot, walked, preempted = arrive(scheduler, snapshot, more, NOW + 100.0)
    # "small" is still in time for the head: NOW + 100 + 7000 <= NOW + 7200
    assert (walked, preempted) == (False, 0)
    later = job("b3", gpus=8, project="b", submit=NOW + 600.0)
    _, walked, preempted = arrive(scheduler, snapshot, later, NOW + 600.0)
    assert (walked, preempted) == (True, 1)  # "small" is late: walked, it reclaims "c"


def test_a_job_arriving_with_gpus_kept_for_it_changes_what_others_wait_for() -> None:
    """GPUs of a stopping job preempted for a job that is not pending are released for
    anyone; once that job is back in the queue they are kept for it (R6), and the head that
    counted on them must be told so: that arrival is walked."""
    cluster = nodes(1)
    stopping = running(
        job("s", gpus=8, project="q", walltime=36_000.0), NOW - 1800.0, {cluster[0].id: range(8)}
    )
    stopping = dataclasses.replace(stopping, stopping_at=Instant(NOW + 600.0), stopping_for="x")
    head = job("h", gpus=8, project="p", submit=NOW - 60.0)
    snapshot = Snapshot(
        cluster,
        (stopping,),
        (head, *refused("q")),
        projects(
            project("p", {"H100": (0, 8)}, "c"),
            project("q", {"H100": (8, 0)}, "c"),
            project("r", {"H100": (8, 0)}, "c"),  # idle: lends to "p"
        ),
    )
    scheduler = Scheduler(POLICY)
    first = scheduler.cycle(snapshot, Instant(NOW), PendingChanges())
    assert [(s.job, s.start) for s in first.shadows] == [("h", NOW + 600.0)]
    snapshot, walked, _ = arrive(scheduler, snapshot, job("y", gpus=8, project="q"), NOW + 30.0)
    assert not walked
    _, walked, preempted = arrive(scheduler, snapshot, job("x", gpus=8, project="q"), NOW + 60.0)
    # walked: the GPUs are kept for "x", and "h" no longer counts on them
    assert (walked, preempted) == (True, 0)
