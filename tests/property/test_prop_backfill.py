"""EASY backfill never delays the reserved job (ADR 0006).

What EASY promises, precisely: the highest blocked job of a GPU type gets a start time
computed as if every running job held its GPUs until its end bound (walltime, or the stop of
an ordered preemption). Whatever else the cycle starts may not take what that job needs at
that time. So if jobs do end by their bounds, nobody new arrives, and no job ranked above it
comes back into play, the job starts no later than promised. Jobs ranked above it that were
not admitted (held back by quota, budget, a reservation) may legitimately overtake it later,
as may jobs that a policy re-ranks over time (fair-share ages jobs and rescales their size
factor), so the simulations keep only the reserved job and the jobs ranked below it, under
policies whose ranking does not change with time. One re-ranking remains: the cycle takes
jobs within their project's nominal quota first (Q5), and quota freed as jobs end can lift
a job above the reserved one; a simulation where such a job acts first ends without verdict.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from oracles import end_of, excluded, fits, free_gpus, simulate
from strategies import NOW, Case, cases, with_policy

from kizuna.kernel.units import Instant
from kizuna.scheduling import (
    Allocation,
    CycleResult,
    ShadowReservation,
    Snapshot,
    make_policy,
    run_cycle,
)
from kizuna.scheduling.testing import job, nodes, project, projects, running

STATIC_ORDER = ("fifo", "las")
"""Policies whose order of a fixed set of jobs is the same at every instant."""


def _held_at(case: Case, result: CycleResult, at: Instant) -> list[Allocation]:
    """What running and just-admitted jobs still hold at `at`, each ending at its bound."""
    stops = {p.job: case.now + p.grace for p in result.preemptions}
    held = [
        r.allocation
        for r in case.snapshot.running
        if min(end_of(r), stops.get(r.job.id, end_of(r))) > at
    ]
    for a in result.admissions:
        if case.now + case.job(a.job).walltime > at:
            held.append(a.allocation)
    return held


def _fits_at_promise(case: Case, result: CycleResult, shadow: ShadowReservation) -> bool:
    job = case.job(shadow.job)
    free = free_gpus(case.snapshot.nodes, _held_at(case, result, shadow.start))
    for node in excluded(job, case.snapshot.reservations, shadow.start):
        free[node] = 0
    return fits(job, case.snapshot.nodes, free)


@settings(max_examples=250, deadline=None)
@given(cases())
def test_the_promised_start_has_room_for_the_reserved_job(case: Case) -> None:
    """At its promised start, with every job ending at its bound, the GPUs the cycle left
    (after its own admissions, backfilled ones included) hold the reserved job: on up nodes,
    off other projects' reservations."""
    result = run_cycle(case.snapshot, case.policy, case.now)
    for shadow in result.shadows:
        job = case.job(shadow.job)
        assert job.gpu_type == shadow.gpu_type
        assert shadow.job not in result.admitted()
        assert shadow.start >= case.now
        assert _fits_at_promise(case, result, shadow), (shadow, result.admissions)


def _check_promises_kept(case: Case) -> None:
    """Each promise of the cycle holds when simulated forward (see the module docstring)."""
    result = run_cycle(case.snapshot, case.policy, case.now)
    for shadow in result.shadows:
        below = result.order[result.order.index(shadow.job) :]
        run = simulate(case, result, shadow.job, shadow.start, below)
        if run.overtaken:
            continue  # re-ranked: quota rule Q5 puts jobs within nominal quota first
        assert run.started is not None, f"{shadow.job} promised {shadow.start}: {run.waiting}"
        assert run.started <= shadow.start


@settings(max_examples=150, deadline=None)
@given(cases(STATIC_ORDER))
def test_backfill_never_delays_the_reserved_job_for_gpus(case: Case) -> None:
    """Quotas and budgets off: run the cycle, then later cycles at every instant a job ends
    or a reservation opens or closes, with jobs holding GPUs to their end bound and no new
    submissions: the reserved job starts no later than its promise."""
    _check_promises_kept(with_policy(case, quotas=False, budgets=False))


def _quota_taken_by_backfill() -> Case:
    """Job J (8 GPUs as one node) of project p, nominal 8, no cohort, is blocked until node 0
    frees in 1 h; K (4 GPUs, 10 h) of p is backfilled into the 4 GPUs of node 1 that J leaves
    unused. In 1 h node 0 is free, but K holds 4 of p's 8 GPUs of quota: J gets QUOTA and
    waits for K, 10 h, though the GPUs are there. Backfill must also leave the reserved job's
    quota (and cohort quota, and budget) intact."""
    ps = projects(project("p", {"H100": (8, 0)}), project("q", {"H100": (16, 0)}))
    x = running(job("x", 8, "q", walltime=7200), NOW - 3600, {"h100-0000": range(8)})
    y = running(job("y", 4, "q", walltime=10800), NOW - 3600, {"h100-0001": range(4)})
    blocked = job("J", 8, "p", per_node=8, submit=0, walltime=3600)
    later = job("K", 4, "p", submit=1, walltime=36000)
    snapshot = Snapshot(nodes(2), (x, y), (blocked, later), ps)
    return Case(snapshot, make_policy("fifo", budgets=False), NOW)


def _cohort_borrowed_by_backfill() -> Case:
    """J (p, 8 GPUs as one node, 1 h; p has nominal 0 and a budget of exactly 8 GPU-hours)
    borrows from cohort c (nominal 16, q holds 8) and is promised node 0 in 1 h. B (q, 4
    GPUs, 30 min) borrows the cohort's last idle quota and is backfilled, as it ends before
    J's start. K (p, 1 GPU, 30 min) is rightly refused: J's budget is kept. But at +10 min
    (job y ends) J is checked against the cohort again, B still holds its share, J gets
    COHORT and with it loses its promise; K is admitted and spends 0.5 GPU-hour of p's
    budget; at +1 h J needs 8 GPU-hours, 7.5 are left: J waits for good (BUDGET)."""
    ps = projects(
        project("p", {"H100": (0, None)}, "c", budgets={"H100": 8 * 3600.0}),
        project("q", {"H100": (8, None)}, "c"),
        project("r", {"H100": (8, None)}, "c"),
        project("o", {"H100": (8, 0)}),
    )
    x = running(job("x", 8, "q", walltime=7200), NOW - 3600, {"h100-0000": range(8)})
    y = running(job("y", 1, "o", walltime=4200), NOW - 3600, {"small-0000": (0,)})
    pending = (
        job("J", 8, "p", per_node=8, submit=0, walltime=3600),
        job("B", 4, "q", submit=1, walltime=1800),
        job("K", 1, "p", submit=2, walltime=1800),
    )
    cluster = nodes(1) + nodes(1, gpus=4, prefix="mid") + nodes(1, gpus=2, prefix="small")
    return Case(Snapshot(cluster, (x, y), pending, ps), make_policy("fifo"), NOW)


@settings(max_examples=150, deadline=None)
@example(case=_quota_taken_by_backfill())
@example(case=_cohort_borrowed_by_backfill())
@given(cases(STATIC_ORDER))
def test_backfill_never_delays_the_reserved_job_for_quota_or_budget(case: Case) -> None:
    """As above with quotas and budgets on: a backfilled job must not take the quota, the
    cohort's lendable quota or the budget that the reserved job needs at its promised start
    either, or the promise is broken just the same."""
    _check_promises_kept(with_policy(case, quotas=True, budgets=True))
