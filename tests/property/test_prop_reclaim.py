"""Reclaim (rules R1-R5 of reclaim.py): preemption only gives a project its nominal quota
back, only from borrowers of its cohort, and it does give it back."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from hypothesis import example, given, settings
from hypothesis import strategies as st
from oracles import Ledger, end_of, excluded
from strategies import BORROWER, HERO, NOW, OWNER, Case, ReclaimCase, cases, reclaim_cases

from kizuna.kernel.ids import GpuType, NodeId, ProjectId, ReservationId
from kizuna.kernel.units import Instant
from kizuna.scheduling import (
    CycleResult,
    ReasonCode,
    Reservation,
    RunningJob,
    Snapshot,
    make_policy,
    run_cycle,
)
from kizuna.scheduling.testing import job, nodes, project, projects, running

ANY_CASE = st.one_of(cases(), reclaim_cases(reserved=True, beyond=True).map(lambda rc: rc.case))


@settings(max_examples=250, deadline=None)
@given(ANY_CASE)
def test_preemption_only_returns_nominal_quota_to_its_owner(case: Case) -> None:
    """Replayed in the order the cycle considered the jobs: every preemption is for a job
    within its project's nominal quota (R1), and takes a job of another project of the same
    cohort, of the same GPU type (R2), preemptible, past its minimum runtime, not already
    stopping (R3), whose project still used more than its nominal quota when the victim was
    chosen (Q4)."""
    result = run_cycle(case.snapshot, case.policy, case.now)
    if not case.policy.quotas:
        assert not result.preemptions, "reclaim is part of quotas; they are off"
        return
    running = {r.job.id: r for r in case.snapshot.running}
    ledger = Ledger.of(case.snapshot.projects, [r.job for r in running.values()])
    active = _active_usage(running.values())
    admitted = result.admitted()
    for job_id in result.order:
        job = case.job(job_id)
        if job_id in admitted:
            ledger.add(job, job.gpus)
            active[(job.project, job.gpu_type)] += job.gpus
            continue
        quota = ledger.quota(job.project, job.gpu_type)
        reason = result.reasons[job_id]
        for p in (p for p in result.preemptions if p.for_job == job_id):
            victim = running[p.job]
            _check_victim(case, ledger, victim, job.project, job.gpu_type)
            key = (victim.job.project, victim.job.gpu_type)
            nominal = ledger.quota(*key).nominal
            assert active[key] > nominal, f"{p.job}: {key[0]} not borrowing ({active[key]})"
            active[key] -= victim.job.gpus
            assert p.grace == victim.job.grace
        if reason.code is ReasonCode.RECLAIMING:  # what it reclaims is its own from now on
            used = ledger.usage[(job.project, job.gpu_type)]
            assert used + job.gpus <= quota.nominal, f"{job_id} reclaims beyond nominal ({used})"
            ledger.add(job, job.gpus)
            active[(job.project, job.gpu_type)] += job.gpus


def _active_usage(running: Iterable[RunningJob]) -> defaultdict[tuple[ProjectId, GpuType], int]:
    """GPUs per (project, type) of running jobs not already being stopped."""
    out: defaultdict[tuple[ProjectId, GpuType], int] = defaultdict(int)
    for r in running:
        if r.stopping_at is None:
            out[(r.job.project, r.job.gpu_type)] += r.job.gpus
    return out


def _check_victim(
    case: Case, ledger: Ledger, victim: RunningJob, owner: ProjectId, gpu_type: GpuType
) -> None:
    cohort = ledger.cohort(owner)
    assert victim.job.gpu_type == gpu_type
    assert victim.job.project != owner, f"{victim.job.id} is the owner's own job"
    assert cohort is not None and ledger.cohort(victim.job.project) == cohort
    assert victim.job.preemptible, f"{victim.job.id} is not preemptible"
    assert case.now - victim.start >= victim.job.min_runtime, f"{victim.job.id} ran too little"
    assert victim.stopping_at is None, f"{victim.job.id} was already stopping"


@settings(max_examples=200, deadline=None)
@given(reclaim_cases())
def test_reclaim_gives_the_owner_its_nominal_quota(rc: ReclaimCase) -> None:
    """An owner's job within its nominal quota, whose GPUs are held by a borrower's
    preemptible jobs, is admitted, or waits RECLAIMING with preemptions issued (or stopping
    jobs claimed); once the victims have stopped, the next cycle admits it."""
    case, job = rc.case, rc.job
    first = run_cycle(case.snapshot, case.policy, case.now)
    if job.id in first.admitted():
        return
    reason = first.reasons[job.id]
    assert reason.code is ReasonCode.RECLAIMING, reason
    victims = {p.job for p in first.preemptions if p.for_job == job.id}
    stopping = [r for r in case.snapshot.running if r.stopping_at is not None]
    assert victims or stopping, "RECLAIMING, yet nothing was preempted and nothing stops"
    later = _after_victims_stopped(case, first, victims)
    second = run_cycle(later.snapshot, case.policy, later.now)
    assert job.id in second.admitted(), second.reasons.get(job.id)


def _after_victims_stopped(case: Case, result: CycleResult, victims: set[str]) -> Case:
    """The case once the victims and the jobs already stopping have released their GPUs."""
    gone = [r for r in case.snapshot.running if r.job.id in victims or r.stopping_at is not None]
    grace = {p.job: p.grace for p in result.preemptions}
    stops = [
        min(end_of(r), r.stopping_at or Instant(case.now + grace.get(r.job.id, 0.0))) for r in gone
    ]
    later = Instant(max([case.now, *stops]))
    snapshot = Snapshot(
        case.snapshot.nodes,
        tuple(r for r in case.snapshot.running if r not in gone),
        case.snapshot.pending,
        case.snapshot.projects,
    )
    return Case(snapshot, case.policy, later)


def _borrower_on_reserved_node() -> Case:
    """One 8-GPU node, reserved for project hero from 1 h ago to 1 h from now, runs a borrower's
    8-GPU job; the owner (nominal 8, same cohort) asks for 8 GPUs for 30 min. The owner may
    not use the node before the reservation ends, so preempting the borrower frees nothing
    it can use; yet the cycle preempts it and promises the owner a start now."""
    owners = projects(
        project(OWNER, {"H100": (8, None)}, "c"),
        project(BORROWER, {"H100": (0, None)}, "c"),
        project(HERO, {"H100": (8, None)}),
    )
    node = NodeId("h100-0000")
    hero = Reservation(
        ReservationId("hero"), HERO, frozenset({node}), Instant(NOW - 3600), Instant(NOW + 3600)
    )
    borrowed = running(job("b1", 8, BORROWER, walltime=4 * 3600), NOW - 7200, {node: range(8)})
    wanted = job("a1", 8, OWNER, walltime=1800)
    snapshot = Snapshot(nodes(1), (borrowed,), (wanted,), owners, (hero,))
    return Case(snapshot, make_policy("fifo"), NOW)


def _reservation_opens_before_the_owner_ends() -> Case:
    """One 8-GPU node, reserved for project hero from 2 h to 3 h from now, runs a borrower's
    8-GPU job with a 60 s grace period; the owner (nominal 8, same cohort) asks for 8 GPUs
    for 2 h. Started now the owner would end as the reservation opens, but it can only start
    once the borrower has stopped, in 60 s, and would then overlap the reservation. The cycle
    checks reservations at `now`, not at the start it promises: it preempts the borrower and
    promises a start in 60 s; in 60 s the owner is told RESERVED and waits 3 h."""
    owners = projects(
        project(OWNER, {"H100": (8, None)}, "c"),
        project(BORROWER, {"H100": (0, None)}, "c"),
        project(HERO, {"H100": (8, None)}),
    )
    node = NodeId("h100-0000")
    hero = Reservation(
        ReservationId("hero"), HERO, frozenset({node}), Instant(NOW + 7200), Instant(NOW + 10800)
    )
    borrowed = running(
        job("b1", 8, BORROWER, walltime=8 * 3600, grace=60.0), NOW - 3600, {node: range(8)}
    )
    wanted = job("a1", 8, OWNER, walltime=7200)
    snapshot = Snapshot(nodes(1), (borrowed,), (wanted,), owners, (hero,))
    return Case(snapshot, make_policy("fifo"), NOW)


@settings(max_examples=200, deadline=None)
@example(case=_borrower_on_reserved_node())
@example(case=_reservation_opens_before_the_owner_ends())
@given(ANY_CASE)
def test_victims_hold_gpus_the_reclaiming_job_may_use(case: Case) -> None:
    """A victim is preempted to free GPUs its reclaiming job will run on: each holds GPUs on
    a node that job may use at the start it is promised (not reserved for another project
    then). Preempting anything else stops a job for nothing."""
    result = run_cycle(case.snapshot, case.policy, case.now)
    running_jobs = {r.job.id: r for r in case.snapshot.running}
    for p in result.preemptions:
        owner = case.job(p.for_job)
        start = result.reasons[p.for_job].earliest_start or case.now
        barred = excluded(owner, case.snapshot.reservations, start)
        usable = set(running_jobs[p.job].allocation.nodes) - barred
        assert usable, f"{p.job} preempted for {owner.id}, but only holds nodes {barred} reserved"
