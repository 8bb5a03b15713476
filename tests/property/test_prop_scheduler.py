"""The shortcuts of a cycle change nothing (ADR 0008, ADR 0013).

`run_cycle` passes over jobs that provably decide nothing in their turn, and explains them
afterwards; a `Scheduler` carries the occupancy and the queue from one cycle to the next.
Both must give exactly what the plain walk gives: every job considered in queue order, on
a snapshot derived afresh.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import BUSY, LINE, SHAPES, Case, cases

from kizuna.kernel.errors import InconsistentSnapshot
from kizuna.kernel.ids import JobId
from kizuna.kernel.units import Instant
from kizuna.scheduling import (
    CycleResult,
    PendingChanges,
    Scheduler,
    Snapshot,
    make_policy,
    run_cycle,
)
from kizuna.scheduling import cycle as cycle_module
from kizuna.scheduling.model import Job, UsageRecord
from kizuna.scheduling.occupancy import Occupancy
from kizuna.scheduling.reclaim import Cap, Plan, Reclaimer
from kizuna.scheduling.testing import end, job, nodes, project, projects, running, settle


@contextmanager
def plain_walk() -> Iterator[None]:
    """Make every cycle consider every job in queue order, passing over none."""

    def walk(self: cycle_module._Cycle) -> None:
        for position, pending in enumerate(self.effective_order()):
            self.position = (0, (position,))
            self.seen.add(pending.id)
            outcome = self.consider(pending)
            if outcome in (cycle_module.Outcome.ADMITTED, cycle_module.Outcome.RECLAIMING):
                self.events[pending.id] = outcome

    fast = cycle_module._Cycle.run
    cycle_module._Cycle.run = walk  # type: ignore[method-assign]
    try:
        yield
    finally:
        cycle_module._Cycle.run = fast  # type: ignore[method-assign]


@contextmanager
def each_on_its_own() -> Iterator[None]:
    """Make every job considered on its own: no answer shared by jobs alike (ADR 0008)."""
    shared = cycle_module._Cycle._alike
    cycle_module._Cycle._alike = lambda self, job, state: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        cycle_module._Cycle._alike = shared  # type: ignore[method-assign]


@contextmanager
def no_reclaim_memos() -> Iterator[None]:
    """Make every reclaim question searched afresh: no failure remembered (ADR 0008)."""
    plan = Reclaimer.plan

    def fresh(self: Reclaimer, job: Job, exclude: frozenset[int], cap: Cap | None) -> Plan | None:
        self.failed.clear()
        self.failed_in.clear()
        return plan(self, job, exclude, cap)

    Reclaimer.plan = fresh  # type: ignore[method-assign]
    try:
        yield
    finally:
        Reclaimer.plan = plan  # type: ignore[method-assign]


def same(a: CycleResult, b: CycleResult) -> None:
    assert a.admissions == b.admissions
    assert a.preemptions == b.preemptions
    assert a.shadows == b.shadows
    assert dict(a.reasons) == dict(b.reasons)
    assert tuple(a.order) == tuple(b.order)


@settings(max_examples=200, deadline=None)
@given(cases())
def test_passing_over_jobs_changes_nothing(case: Case) -> None:
    fast = run_cycle(case.snapshot, case.policy, case.now)
    with plain_walk():
        plain = run_cycle(case.snapshot, case.policy, case.now)
    same(fast, plain)


@settings(max_examples=400, deadline=None)
@given(cases(profiles=st.just(LINE)))
def test_passing_over_a_long_line_changes_nothing(case: Case) -> None:
    """Jobs late for the head's promised start, or refused by the reclaimer, are passed
    over and explained afterwards with what they would have been told in their turn."""
    fast = run_cycle(case.snapshot, case.policy, case.now)
    with plain_walk():
        plain = run_cycle(case.snapshot, case.policy, case.now)
    same(fast, plain)


@settings(max_examples=500, deadline=None)
@given(cases(profiles=st.just(SHAPES)))
def test_passing_over_gangs_of_several_shapes_changes_nothing(case: Case) -> None:
    """A group's jobs are passed over by the bounds of their own shape: a refused reclaim
    or `late` placement of one shape says nothing of another shape of the same size."""
    fast = run_cycle(case.snapshot, case.policy, case.now)
    with plain_walk():
        plain = run_cycle(case.snapshot, case.policy, case.now)
    same(fast, plain)


@settings(max_examples=300, deadline=None)
@given(cases(profiles=st.sampled_from((LINE, BUSY, SHAPES))))
def test_remembered_reclaim_failures_change_nothing(case: Case) -> None:
    """A reclaim refused at once because a smaller gang of its shape failed (or failed
    uncapped) gets the answer a search would give."""
    fast = run_cycle(case.snapshot, case.policy, case.now)
    with no_reclaim_memos():
        fresh = run_cycle(case.snapshot, case.policy, case.now)
    same(fast, fresh)


@settings(max_examples=200, deadline=None)
@given(cases())
def test_jobs_alike_sharing_an_answer_changes_nothing(case: Case) -> None:
    fast = run_cycle(case.snapshot, case.policy, case.now)
    with plain_walk(), each_on_its_own():
        plain = run_cycle(case.snapshot, case.policy, case.now)
    same(fast, plain)


STEPS = st.lists(
    st.sampled_from(("settle", "end", "submit", "later", "same", "charge")), min_size=1, max_size=5
)


def step(snapshot: Snapshot, result: CycleResult, now: Instant, action: str, n: int) -> Snapshot:
    """The next snapshot of a loop: decisions carried out, a job ended, a job submitted."""
    if action == "settle":
        return settle(snapshot, result, now)
    if action == "end" and snapshot.running:
        gone = sorted(r.job.id for r in snapshot.running)[n % len(snapshot.running)]
        return end(snapshot, JobId(gone))
    if action == "charge":  # fair-share usage moves on: new project objects, same quotas
        charged = {
            pid: dataclasses.replace(p, usage=UsageRecord(p.usage.gpu_seconds + 3600.0 * n, now))
            for pid, p in snapshot.projects.items()
        }
        return dataclasses.replace(snapshot, projects=charged)
    if action == "submit":
        new = job(f"new{n}", gpus=1 + n % 8, project=f"p{n % 4}", submit=now)
        return dataclasses.replace(snapshot, pending=(*snapshot.pending, new))
    return snapshot


@settings(max_examples=100, deadline=None)
@given(cases(), STEPS)
def test_results_read_late_are_the_results_of_their_cycle(case: Case, actions: list[str]) -> None:
    """Reasons and order are worked out when first read; reading them only after the
    `Scheduler` ran later cycles (and moved its queue and occupancy on) changes nothing."""
    scheduler = Scheduler(case.policy)
    snapshot, now = case.snapshot, case.now
    kept = [(scheduler.cycle(snapshot, now), snapshot, now)]
    for n, action in enumerate(actions):
        snapshot = step(snapshot, kept[-1][0], now, action, n)
        if action == "later":
            now = Instant(now + 600.0)
        kept.append((scheduler.cycle(snapshot, now), snapshot, now))
    for result, seen, at in kept:
        same(result, run_cycle(seen, case.policy, at))


@settings(max_examples=100, deadline=None)
@given(cases(), STEPS)
def test_a_scheduler_gives_what_a_fresh_cycle_gives(case: Case, actions: list[str]) -> None:
    """Over a sequence of snapshots, each cycle of one `Scheduler` equals `run_cycle` on
    that snapshot, whatever came before."""
    scheduler = Scheduler(case.policy)
    snapshot, now = case.snapshot, case.now
    result = scheduler.cycle(snapshot, now)
    same(result, run_cycle(snapshot, case.policy, now))
    for n, action in enumerate(actions):
        snapshot = step(snapshot, result, now, action, n)
        if action == "later":
            now = Instant(now + 600.0)
        result = scheduler.cycle(snapshot, now)
        same(result, run_cycle(snapshot, case.policy, now))


@settings(max_examples=100, deadline=None)
@given(cases(), STEPS)
def test_a_kept_occupancy_equals_one_derived_afresh(case: Case, actions: list[str]) -> None:
    """What a cycle reads of a kept occupancy (each project's movable jobs, each node's
    movable GPUs, the releases, the stopping jobs and their GPUs) is what a fresh one
    derives from the same snapshot."""
    scheduler = Scheduler(case.policy)
    snapshot, now = case.snapshot, case.now
    for n, action in enumerate(["same", *actions]):
        result = scheduler.cycle(snapshot, now)
        kept, fresh = scheduler._occupancy, Occupancy.of(snapshot)
        assert kept is not None
        for t, held in fresh.types.items():
            mine = kept.types[t]
            assert mine.movable_gpus == held.movable_gpus
            assert {p: v for p, v in mine.of_project.items() if v} == held.of_project
            assert mine.releases == held.releases
            assert mine.stoppers == held.stoppers
            assert {k: v for k, v in mine.kept.items() if v} == dict(held.kept)
        snapshot = step(snapshot, result, now, action, n)
        if action == "later":
            now = Instant(now + 600.0)


def changes_between(before: Snapshot, after: Snapshot) -> PendingChanges:
    """What a loop that knows its events would tell the scheduler."""
    old = {j.id: j for j in before.pending}
    new = {j.id for j in after.pending}
    arrived = [j for j in after.pending if old.get(j.id) is not j]
    left = [i for i, j in old.items() if i not in new or j not in after.pending]
    before_running = {id(r) for r in before.running}
    after_running = {id(r) for r in after.running}
    came = [r for r in after.running if id(r) not in before_running]
    gone = [r for r in before.running if id(r) not in after_running]
    return PendingChanges(arrived, left, came, gone)


@settings(max_examples=100, deadline=None)
@given(cases(), STEPS)
def test_a_scheduler_told_the_changes_gives_what_a_fresh_cycle_gives(
    case: Case, actions: list[str]
) -> None:
    """The simulator tells the scheduler which jobs arrived and left, and which running jobs
    came and went, instead of letting it compare them: each cycle still equals `run_cycle`."""
    scheduler = Scheduler(case.policy)
    snapshot, now = case.snapshot, case.now
    result = scheduler.cycle(snapshot, now, PendingChanges())
    same(result, run_cycle(snapshot, case.policy, now))
    for n, action in enumerate(actions):
        before = snapshot
        snapshot = step(snapshot, result, now, action, n)
        if action == "later":
            now = Instant(now + 600.0)
        result = scheduler.cycle(snapshot, now, changes_between(before, snapshot))
        same(result, run_cycle(snapshot, case.policy, now))


def test_changes_that_do_not_add_up_are_refused() -> None:
    """A loop that tells the scheduler wrong changes gets an error, not wrong decisions;
    the next cycle sorts the queue anew from the snapshot."""
    policy = make_policy("fifo", quotas=False)
    first, second = job("a", gpus=16), job("b", gpus=16)
    waiting = tuple(job(f"w{n:02d}", gpus=16, submit=n) for n in range(20))
    snapshot = Snapshot(nodes(1), pending=(first, *waiting))
    grown = dataclasses.replace(snapshot, pending=(first, *waiting, second))
    wrong = [
        (PendingChanges(), "snapshot has 22"),
        (PendingChanges([second], [JobId("zzz")]), "zzz left the queue but was not pending"),
        (PendingChanges([first, second]), "a arrived but was already pending"),
    ]
    for changes, message in wrong:
        scheduler = Scheduler(policy)
        scheduler.cycle(snapshot, Instant(0.0))
        with pytest.raises(InconsistentSnapshot, match=message):
            scheduler.cycle(grown, Instant(1.0), changes)
        same(scheduler.cycle(grown, Instant(2.0)), run_cycle(grown, policy, Instant(2.0)))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 40), st.sampled_from((1, 2, 4, 8))),
        min_size=1,
        max_size=25,
    ),
    st.lists(st.integers(1, 900), min_size=1, max_size=12),
)
def test_a_kept_queue_follows_jobs_across_tiers_as_they_age(
    jobs: list[tuple[int, int, int]], steps: list[int]
) -> None:
    """Fair-share with age that fills in four 300 s periods and outweighs fair share: as
    time passes, jobs move to their project's full-age tier (ADR 0016) in a kept queue,
    and its order stays the order a fresh cycle sorts."""
    policy = make_policy(
        "fair-share", max_age=1200.0, recalc_period=300.0, w_age=20_000.0, quotas=False
    )
    tenants = projects(*(project(f"p{n}", usage=3600.0 * n * n) for n in range(4)))
    busy = running(job("busy", gpus=8, walltime=1e9), 0.0, {"h100-0000": range(8)})
    pending = tuple(
        job(f"j{i:02d}", gpus=g, project=f"p{p}", submit=100.0 * s)
        for i, (p, s, g) in enumerate(jobs)
    )
    snapshot = Snapshot(nodes(1), (busy,), pending, tenants)
    scheduler = Scheduler(policy)
    now = Instant(4000.0)
    for n, step in enumerate(steps):
        if n == len(steps) // 2:  # a job arrives midway
            late = job("late", gpus=1, project="p3", submit=now)
            grown = dataclasses.replace(snapshot, pending=(*snapshot.pending, late))
            result = scheduler.cycle(grown, now, PendingChanges([late], []))
            snapshot = grown
        else:
            result = scheduler.cycle(snapshot, now, PendingChanges())
        assert tuple(result.order) == tuple(run_cycle(snapshot, policy, now).order)
        now = Instant(now + step)


def test_running_changes_that_do_not_add_up_are_refused() -> None:
    """Told that a job ended which never ran, or that a running job started again, the
    scheduler refuses; the next cycle derives the occupancy anew."""
    policy = make_policy("fifo", quotas=False)
    busy = running(job("r", gpus=8), 0.0, {"h100-0000": range(8)})
    other = running(job("s", gpus=8), 0.0, {"h100-0001": range(8)})
    snapshot = Snapshot(nodes(2), (busy,), (job("w", gpus=16),))
    for changes, message in [
        (PendingChanges(came=[], gone=[other]), "s was not running"),
        (PendingChanges(came=[busy], gone=[]), "r was already running"),
        (PendingChanges(came=[], gone=[]), None),
    ]:
        scheduler = Scheduler(policy)
        scheduler.cycle(snapshot, Instant(0.0))
        grown = dataclasses.replace(snapshot, running=(busy, other))
        if message is None:  # told nothing came, while the snapshot has one more
            with pytest.raises(InconsistentSnapshot, match="snapshot has 2"):
                scheduler.cycle(grown, Instant(1.0), changes)
        else:
            with pytest.raises(InconsistentSnapshot, match=message):
                scheduler.cycle(grown, Instant(1.0), changes)
        same(scheduler.cycle(grown, Instant(2.0)), run_cycle(grown, policy, Instant(2.0)))
