"""One scheduling cycle: a snapshot in, admissions, preemptions and reasons out (ADR 0002).

The steps, as numbered in the issue and cited below:
 1. order pending jobs by the policy;
 2. for each, check quota (nominal, then borrowing) and budget, and find a placement for the
    whole gang;
 3. if a job within its nominal quota cannot fit, reclaim: preempt the fewest borrowed jobs of
    other projects of its cohort (reclaim.py);
 4. the highest blocked job of each GPU type gets a promised start (EASY backfill); later jobs
    start only where they cannot delay it, or, without backfill, wait behind it;
 5. every job left pending gets a `Reason`.

Nothing here reads a clock or does I/O: the live service and the simulator call this function
unchanged, and the same snapshot always gives the same result.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum

from kizuna.kernel.ids import GpuType, JobId
from kizuna.kernel.units import Instant
from kizuna.scheduling import reasons
from kizuna.scheduling.backfill import Release, Shadow, find_shadow, free_at
from kizuna.scheduling.budget import BudgetBook, BudgetUsage
from kizuna.scheduling.capacity import Pool
from kizuna.scheduling.decisions import (
    Admission,
    CycleResult,
    Preemption,
    Reason,
    ReasonCode,
    ShadowReservation,
)
from kizuna.scheduling.model import Job, Reservation, RunningJob, Snapshot
from kizuna.scheduling.occupancy import Occupancy, TypeOccupancy
from kizuna.scheduling.policies.base import Policy
from kizuna.scheduling.quota import Fit, QuotaBook, QuotaUsage
from kizuna.scheduling.reclaim import Cap, Reclaimer
from kizuna.scheduling.validation import ClusterShape, validate_job

NOTHING: frozenset[int] = frozenset()
_NO_LIMIT = float("inf")


def run_cycle(snapshot: Snapshot, policy: Policy, now: Instant) -> CycleResult:
    """Decide which pending jobs start where, which running jobs are preempted, and why the
    rest wait. Pure: the same arguments always give the same result."""
    pending = {j.id for j in snapshot.pending}
    return cycle_on(Occupancy.of(snapshot), policy.order(snapshot, now), pending, policy, now)


def cycle_on(
    occupancy: Occupancy,
    order: list[Job],
    pending: Container[JobId],
    policy: Policy,
    now: Instant,
) -> CycleResult:
    """`run_cycle` on what is already derived from the snapshot: its occupancy, and its
    pending jobs in the policy's order (step 1) and by id. `Scheduler` keeps them between
    cycles."""
    cycle = _Cycle.build(occupancy, pending, policy, now)
    if policy.quotas:
        order = _nominal_first(order, cycle.quota)
    cycle.run(order)
    return CycleResult(
        admissions=tuple(cycle.admissions),
        preemptions=tuple(p for _, p in sorted(cycle.preemptions, key=lambda item: item[0])),
        reasons=_Reasons(cycle),
        shadows=tuple(
            ShadowReservation(s.job.id, t, s.start) for t, s in sorted(cycle.shadows.items())
        ),
        order=tuple(j.id for j in order),
    )


class Outcome(Enum):
    """What considering one job came to."""

    ADMITTED = "admitted"
    RECLAIMING = "reclaiming"
    WAITING = "waiting"
    INVALID = "invalid"


@dataclass
class _TypeState:
    """Everything the cycle tracks for one GPU type."""

    pool: Pool
    releases: list[tuple[Instant, int, int, JobId]]
    reclaimer: Reclaimer
    reservations: list[tuple[Reservation, frozenset[int]]]
    stopping_until: list[Instant]
    """Per node, when GPUs of already-preempted jobs will have been released."""
    owner_of: dict[JobId, JobId]
    """Stopping jobs whose GPUs are kept for the waiting job they were preempted for."""
    waiting: int = 0
    """Jobs of this type ahead in the queue so far and not started (invalid ones too)."""
    never: dict[tuple[int, bool], int] = field(default_factory=dict)
    """Smallest gang per shape that no release of running jobs would ever make room for."""
    stops: dict[JobId, Instant] = field(default_factory=dict)
    """When this cycle's victims will have stopped (earlier than their walltime)."""
    shadow: Shadow | None = None
    closed: int | None = None
    """Set once the type is closed (ADR 0008): the count of waiting jobs at that moment."""
    closed_above: int = 1 << 30
    """Once closed, no job of this many GPUs or more can be placed for the rest of the cycle."""
    tail: list[tuple[int, Job, int]] = field(default_factory=list)
    """Jobs passed over: queue position, job, jobs of the type waiting ahead of it."""
    events: list[tuple[int, Outcome, Job]] = field(default_factory=list)
    """Jobs admitted or reclaiming, with their queue positions: what `explain_tails` replays."""
    books_at_start: tuple[QuotaUsage, BudgetUsage] | None = None

    def close(self, cycle: _Cycle) -> None:
        """Close once the head holds the line: strict order, or no GPU of the type is free."""
        if self.shadow is None or (cycle.policy.backfill and self.pool.now.free > 0):
            return
        self.closed = self.waiting
        self.narrow(cycle.policy.backfill)

    def narrow(self, backfill: bool) -> None:
        """Without backfill every later job waits; with it, a job of at least the smallest
        size that failed to fit (or more than is free) cannot fit any more this cycle."""
        if not backfill:
            self.closed_above = 0
            return
        failed = self.pool.now.failed.get((0, False, NOTHING), 1 << 30)
        self.closed_above = min(failed, self.pool.now.free + 1)


class _Reasons(Mapping[JobId, Reason]):
    """The cycle's reasons; those of closed types' tails are written on first access."""

    def __init__(self, cycle: _Cycle) -> None:
        self._cycle: _Cycle | None = cycle
        self._reasons = cycle.reasons

    def _done(self) -> dict[JobId, Reason]:
        if self._cycle is not None:
            self._cycle.explain_tails()
            self._cycle = None
        return self._reasons

    def __getitem__(self, job: JobId) -> Reason:
        return self._done()[job]

    def __iter__(self) -> Iterator[JobId]:
        return iter(self._done())

    def __len__(self) -> int:
        return len(self._done())


@dataclass
class _Cycle:
    snapshot: Snapshot
    policy: Policy
    now: Instant
    types: dict[GpuType, _TypeState]
    quota: QuotaBook
    budget: BudgetBook
    cluster: ClusterShape
    up: ClusterShape
    admissions: list[Admission] = field(default_factory=list)
    preemptions: list[tuple[int, Preemption]] = field(default_factory=list)
    """With the queue position of the job they make room for: the order decisions were made."""
    position: int = 0
    """The queue position of the job being considered."""
    reasons: dict[JobId, Reason] = field(default_factory=dict)
    problems: dict[tuple[GpuType, int, int | None, bool], list[str]] = field(default_factory=dict)

    @classmethod
    def build(
        cls, occupancy: Occupancy, pending: Container[JobId], policy: Policy, now: Instant
    ) -> _Cycle:
        snapshot = occupancy.snapshot
        quota = occupancy.quota.fork()
        types = {
            t: _state(held, snapshot.reservations, quota, pending, now)
            for t, held in occupancy.types.items()
        }
        budget = BudgetBook.of(snapshot.projects, snapshot.running, now)
        for t, state in types.items():
            state.books_at_start = (quota.saved(t), budget.saved(t))
        return cls(snapshot, policy, now, types, quota, budget, occupancy.cluster, occupancy.up)

    @property
    def shadows(self) -> dict[GpuType, Shadow]:
        return {t: s.shadow for t, s in self.types.items() if s.shadow is not None}

    # -- the queue, and closed types --------------------------------------------------------

    def run(self, order: list[Job]) -> None:
        """Steps 2-5 for every job in queue order. A job that provably decides nothing in its
        turn (its quota or budget already refuses it, or its type is closed and it cannot
        reclaim) is passed over; `explain_tails` later gives it the very reason it would have
        got in its turn (ADR 0008)."""
        types = self.types
        allow = self.quota.allowance(types) if self.policy.quotas else None
        left = self.budget.allowance(types) if self.policy.budgets else None
        for position, job in enumerate(order):
            state = types.get(job.gpu_type)
            if state is None:
                self.consider(job)
                continue
            key = (job.project, job.gpu_type)
            if (
                (allow is not None and job.gpus > allow.get(key, 0))
                or (left is not None and job.gpus * job.walltime > left.get(key, _NO_LIMIT))
                or (
                    state.closed is not None
                    and job.gpus >= state.closed_above
                    and not self._owed(job)
                )
            ):
                state.tail.append((position, job, state.waiting))
                state.waiting += 1
                continue
            self.position = position
            outcome = self.consider(job)
            if outcome is Outcome.ADMITTED or outcome is Outcome.RECLAIMING:
                state.events.append((position, outcome, job))
            if state.closed is None:
                state.close(self)
            else:
                state.narrow(self.policy.backfill)

    def _owed(self, job: Job) -> bool:
        """Could the job reclaim? Only within its nominal quota (R1), and not in strict order."""
        return self.policy.quotas and self.policy.backfill and self.quota.within_nominal(job)

    def explain_tails(self) -> None:
        """Step 5 for the passed-over jobs: the books of each type are set back to the start
        of the cycle and what was admitted or reclaimed is booked again in queue order, so
        each job is told what it would have been told in its turn."""
        for _, state in sorted(self.types.items()):
            if not state.tail:
                continue
            assert state.books_at_start is not None
            quota_then, budget_then = state.books_at_start
            self.quota.restore(quota_then)
            self.budget.restore(budget_then)
            events = iter(state.events)
            pending = next(events, None)
            for position, job, ahead in state.tail:
                while pending is not None and pending[0] < position:
                    self._replay(pending[1], pending[2])
                    pending = next(events, None)
                state.waiting = ahead
                self.consider(job)
            while pending is not None:
                self._replay(pending[1], pending[2])
                pending = next(events, None)

    def _replay(self, outcome: Outcome, job: Job) -> None:
        """Book again what a job took in its turn."""
        if outcome is Outcome.ADMITTED:
            self.quota.add(job, job.gpus)
            self.budget.commit(job)
        elif outcome is Outcome.RECLAIMING:
            self.quota.add(job, job.gpus)

    # -- the steps for one job ------------------------------------------------------------

    def consider(self, job: Job) -> Outcome:
        problems = self._problems(job)
        if problems:
            self.reasons[job.id] = Reason(ReasonCode.INVALID, "; ".join(problems))
            if job.gpu_type in self.types:
                self.types[job.gpu_type].waiting += 1
            return Outcome.INVALID
        state = self.types[job.gpu_type]
        fit = self.quota.check(job) if self.policy.quotas else Fit.NOMINAL  # step 2
        if isinstance(fit, Reason):
            return self._wait(job, fit)
        over_budget = self.budget.check(job) if self.policy.budgets else None
        if over_budget is not None:
            return self._wait(job, over_budget)
        shadow = state.shadow
        if shadow is not None and not self.policy.backfill:  # step 4, strict order
            return self._wait(
                job, reasons.priority(job, shadow.job, shadow.start, self.now, state.waiting)
            )
        late = shadow is not None and self.now + job.walltime > shadow.start
        exclude = self._excluded(job, state, self.now)
        parts = state.pool.view_for(late).find(job.gpus, job.gpus_per_node, job.one_domain, exclude)
        if parts is not None:
            allocation = state.pool.take(parts, late)
            end = Instant(self.now + job.walltime)
            state.releases.extend((end, i, n, job.id) for i, n in parts)
            self.quota.add(job, job.gpus)
            self.budget.commit(job)
            self.admissions.append(
                Admission(job.id, allocation, fit is Fit.BORROWING, shadow is not None)
            )
            return Outcome.ADMITTED
        if fit is Fit.NOMINAL and self.policy.quotas and self._reclaim(job, state, exclude):
            return Outcome.RECLAIMING  # step 3
        return self._blocked(job, state, late, exclude)

    def _wait(self, job: Job, reason: Reason) -> Outcome:  # step 5
        self.reasons[job.id] = reason
        self.types[job.gpu_type].waiting += 1
        return Outcome.WAITING

    def _problems(self, job: Job) -> list[str]:
        key = (job.gpu_type, job.gpus, job.gpus_per_node, job.one_domain)
        found = self.problems.get(key)
        if found is None:
            found = self.problems[key] = validate_job(job, self.cluster)
        return found

    # -- step 3: reclaim --------------------------------------------------------------------

    def _reclaim(self, job: Job, state: _TypeState, exclude: frozenset[int]) -> bool:
        pool = state.pool
        cap = Cap(pool.slack, state.shadow.start) if state.shadow is not None else None
        plan = state.reclaimer.plan(job, exclude, cap)
        if plan is None:
            return False
        stops = [self.now + v.job.grace for v in plan.victims]
        stops += [state.stopping_until[i] for i, n in plan.freed.items() if n > 0]
        start = Instant(max([self.now, *stops]))
        state.reclaimer.commit(plan, lambda victim: self._preempt(victim, job, state))
        self.quota.add(job, job.gpus)  # Q1: what it reclaims counts as its own from now on
        if state.shadow is None:  # step 4: the reclaiming job holds the line for its type
            slack = free_at(pool, self._releases(state, job), start)
            for i, n in plan.parts:
                slack[i] = max(0, slack[i] - n)
            state.shadow = Shadow(job, start, plan.parts, slack)
            pool.reserve_late(list(slack))
        else:
            pool.shrink_slack([(i, -n) for i, n in plan.own.items()])  # R6: not in the promise
            for victim in plan.victims:  # GPUs the promise did not count on (see reclaim.Cap)
                if victim.end_bound > state.shadow.start:
                    pool.shrink_slack(
                        [(pool.index[n], -len(ix)) for n, ix in victim.allocation.parts]
                    )
            pool.shrink_slack(plan.parts)
        self.reasons[job.id] = reasons.reclaiming(job, len(plan.victims), start, self.now)
        state.waiting += 1
        return True

    def _preempt(self, victim: RunningJob, job: Job, state: _TypeState) -> None:
        self.preemptions.append(
            (
                self.position,
                Preemption(
                    victim.job.id,
                    job.id,
                    victim.job.grace,
                    f"reclaimed: project {job.project} needs its nominal {job.gpu_type} quota"
                    f" for job {job.id}; project {victim.job.project} was borrowing",
                ),
            )
        )
        state.stops[victim.job.id] = Instant(self.now + victim.job.grace)

    # -- step 4: the promised start, and reasons for blocked jobs ---------------------------

    def _blocked(self, job: Job, state: _TypeState, late: bool, exclude: frozenset[int]) -> Outcome:
        if state.shadow is None:
            return self._promise(job, state, exclude)
        shadow, pool = state.shadow, state.pool
        if late and pool.now.find(job.gpus, job.gpus_per_node, job.one_domain, exclude) is not None:
            return self._wait(job, reasons.backfill(job, shadow.job, shadow.start, self.now))
        if exclude and pool.view_for(late).find(
            job.gpus, job.gpus_per_node, job.one_domain, NOTHING
        ):
            return self._wait(job, reasons.reserved(job, None, self.now))
        return self._wait(job, reasons.behind(job, state.waiting))

    def _promise(self, job: Job, state: _TypeState, exclude: frozenset[int]) -> Outcome:
        """Step 4 for the highest blocked job of its type: find its earliest start."""
        shadow = self._shadow(job, state, exclude)
        pool = state.pool
        if exclude and pool.now.find(job.gpus, job.gpus_per_node, job.one_domain, NOTHING):
            start = shadow.start if shadow is not None else None
            outcome = self._wait(job, reasons.reserved(job, start, self.now))
        elif shadow is None and (problems := validate_job(job, self.up)):
            return self._wait(job, reasons.capacity(job, problems))
        else:
            free = pool.now.largest_hole(job.gpus_per_node, job.one_domain)
            start = shadow.start if shadow is not None else None
            outcome = self._wait(job, reasons.resources(job, free, self.now, start, state.waiting))
        if shadow is not None:
            state.shadow = shadow
            pool.reserve_late(list(shadow.slack))
        return outcome

    def _shadow(self, job: Job, state: _TypeState, exclude: frozenset[int]) -> Shadow | None:
        key = (job.gpus_per_node or 0, job.one_domain)
        if not exclude and job.gpus >= state.never.get(key, 1 << 30):
            return None  # a smaller gang of this shape never fits on the cluster as it is
        releases = self._releases(state, job)
        opens = sorted({r.end for r, _ in state.reservations if r.project != job.project})
        shadow = find_shadow(
            state.pool, releases, job, self.now, lambda at: self._excluded(job, state, at), opens
        )
        if shadow is None and not exclude:
            state.never[key] = min(job.gpus, state.never.get(key, 1 << 30))
        return shadow

    def _releases(self, state: _TypeState, job: Job) -> list[Release]:
        """When running jobs give their GPUs back to `job` at the latest: this cycle's victims
        early; GPUs kept for another waiting job never (R6)."""
        stops, owner_of = state.stops, state.owner_of
        return sorted(
            (min(at, stops[jid]) if jid in stops else at, i, n)
            for at, i, n, jid in state.releases
            if owner_of.get(jid, job.id) == job.id
        )

    def _excluded(self, job: Job, state: _TypeState, start: Instant) -> frozenset[int]:
        """Nodes reserved for other projects that `job`, started at `start`, may not use."""
        if not state.reservations:
            return NOTHING
        end = start + job.walltime
        out: set[int] = set()
        for r, nodes in state.reservations:
            if r.project != job.project and end > r.start and start < r.end:
                out |= nodes
        return frozenset(out)


def _nominal_first(order: list[Job], quota: QuotaBook) -> list[Job]:
    """Jobs that fit their project's nominal quota as the cycle starts go before jobs that
    would borrow, each in the policy's order (Kueue's rule; ADR 0009, Q5). So GPUs reclaimed
    for a project go to it, not back to the borrower."""
    room = quota.headroom()
    first = [j for j in order if j.gpus <= room.get((j.project, j.gpu_type), 0)]
    if not first:
        return order
    taken = {id(j) for j in first}
    return first + [j for j in order if id(j) not in taken]


def _state(
    held: TypeOccupancy,
    reservations: Iterable[Reservation],
    quota: QuotaBook,
    pending: Container[JobId],
    now: Instant,
) -> _TypeState:
    """A cycle's own copy of what running jobs hold of one GPU type. GPUs of stopping jobs
    preempted for a job still waiting are kept for that job (reclaim rule R6)."""
    pool = held.pool.fork()
    releasing = [0] * len(pool.nodes)
    until = [now] * len(pool.nodes)
    earmarked: dict[JobId, dict[int, int]] = {}
    owner_of: dict[JobId, JobId] = {}
    for r in held.stoppers.values():
        owner = r.stopping_for if r.stopping_for in pending else None
        if owner is not None:
            owner_of[r.job.id] = owner
        for node, indices in r.allocation.parts:
            i = pool.index[node]
            if pool.schedulable[i]:
                if owner is None:
                    releasing[i] += len(indices)
                else:
                    mine = earmarked.setdefault(owner, {})
                    mine[i] = mine.get(i, 0) + len(indices)
            until[i] = Instant(max(until[i], r.end_bound))
    kept = defaultdict(int, held.kept)
    reclaimer = Reclaimer(pool, quota, held.movable, releasing, kept, now, earmarked)
    return _TypeState(
        pool,
        list(held.releases),
        reclaimer,
        _reservations(pool, reservations, now),
        until,
        owner_of,
    )


def _reservations(
    pool: Pool, reservations: Iterable[Reservation], now: Instant
) -> list[tuple[Reservation, frozenset[int]]]:
    out = []
    for r in reservations:
        nodes = frozenset(pool.index[n] for n in r.nodes if n in pool.index)
        if nodes and r.end > now:
            out.append((r, nodes))
    return out
