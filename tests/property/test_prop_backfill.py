"""EASY backfill never delays the reserved job (ADR 0006).

What EASY promises, precisely: the highest blocked job of a GPU type gets a start time
computed as if every running job held its GPUs until its end bound (walltime, or the stop of
an ordered preemption). Whatever else the cycle starts may not take GPUs that job needs at
that time. So if jobs do end by their bounds, nobody new arrives, and no job ranked above it
comes back into play, the job starts no later than promised. Jobs ranked above it that were
not admitted (held back by quota, budget, a reservation) may legitimately overtake it later,
as may jobs that a policy re-ranks over time (fair-share ages jobs and rescales their size
factor), so the simulation keeps only the reserved job and the jobs ranked below it, under
policies whose ranking does not change with time.
"""

from __future__ import annotations

from hypothesis import given, settings
from oracles import end_of, excluded, fits, free_gpus, simulate
from strategies import Case, cases

from kizuna.kernel.units import Instant
from kizuna.scheduling import Allocation, CycleResult, ShadowReservation, run_cycle

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


@settings(max_examples=300, deadline=None)
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


@settings(max_examples=200, deadline=None)
@given(cases(STATIC_ORDER))
def test_backfill_never_delays_the_reserved_job(case: Case) -> None:
    """Run the cycle, then later cycles at every instant a job ends or a reservation opens
    or closes, with jobs holding GPUs to their end bound and no new submissions: the
    reserved job starts no later than its promise."""
    result = run_cycle(case.snapshot, case.policy, case.now)
    for shadow in result.shadows:
        below = result.order[result.order.index(shadow.job) :]
        started = simulate(case, result, shadow.job, shadow.start, below)
        assert started is not None, f"{shadow.job} not started by {shadow.start}"
        assert started <= shadow.start
