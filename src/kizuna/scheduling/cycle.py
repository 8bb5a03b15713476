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

import heapq
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from kizuna.kernel.ids import GpuType, JobId, ProjectId
from kizuna.kernel.units import Instant
from kizuna.scheduling import reasons
from kizuna.scheduling.backfill import Release, Shadow, find_shadow
from kizuna.scheduling.budget import BudgetBook
from kizuna.scheduling.capacity import Pool
from kizuna.scheduling.decisions import (
    Admission,
    CycleResult,
    Preemption,
    Reason,
    ReasonCode,
    ShadowReservation,
)
from kizuna.scheduling.model import Job, NodeState, Reservation, RunningJob, Snapshot
from kizuna.scheduling.policies.base import Policy
from kizuna.scheduling.quota import Fit, QuotaBook, QuotaUsage
from kizuna.scheduling.reclaim import Cap, Plan, Reclaimer, candidates
from kizuna.scheduling.validation import ClusterShape, validate_job

NOTHING: frozenset[int] = frozenset()


def run_cycle(snapshot: Snapshot, policy: Policy, now: Instant) -> CycleResult:
    """Decide which pending jobs start where, which running jobs are preempted, and why the
    rest wait. Pure: the same arguments always give the same result."""
    cycle = _Cycle.build(snapshot, policy, now)
    order = policy.order(snapshot, now)  # step 1
    types = cycle.types
    for position, job in enumerate(order):
        state = types.get(job.gpu_type)
        if state is not None and state.closed is not None:
            state.tail.append((position, job))
        else:
            cycle.position = position
            cycle.consider(job)
            if state is not None and state.closed is None:
                state.close_if_full(policy.backfill, cycle.quota)
    cycle.reclaim_in_tails()
    return CycleResult(
        admissions=tuple(cycle.admissions),
        preemptions=tuple(p for _, p in sorted(cycle.preemptions, key=lambda item: item[0])),
        reasons=_Reasons(cycle),
        shadows=tuple(
            ShadowReservation(s.job.id, t, s.start) for t, s in sorted(cycle.shadows.items())
        ),
        order=tuple(j.id for j in order),
    )


@dataclass
class _TypeState:
    """Everything the cycle tracks for one GPU type."""

    pool: Pool
    releases: list[tuple[Instant, int, int, JobId]]
    reclaimer: Reclaimer
    reservations: list[tuple[Reservation, frozenset[int]]]
    stopping_until: list[Instant]
    """Per node, when GPUs of already-preempted jobs will have been released."""
    waiting: int = 0
    """Jobs of this type considered so far and left pending."""
    stops: dict[JobId, Instant] = field(default_factory=dict)
    """When this cycle's victims will have stopped (earlier than their walltime)."""
    shadow: Shadow | None = None
    closed: int | None = None
    """Set once nothing more of this type can start this cycle (ADR 0008): the count of
    waiting jobs at that moment. Later jobs of the type go to `tail`."""
    tail: list[tuple[int, Job]] = field(default_factory=list)
    """Jobs after the type closed, with their positions in the queue."""
    usage_at_close: QuotaUsage | None = None

    def close_if_full(self, backfill: bool, quota: QuotaBook) -> None:
        """A type closes once its line is held (strict order) or its GPUs are all taken."""
        if self.shadow is not None and (not backfill or self.pool.now.free == 0):
            self.closed = self.waiting
            self.usage_at_close = quota.saved(self.pool.nodes[0].gpu_type)


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
    def build(cls, snapshot: Snapshot, policy: Policy, now: Instant) -> _Cycle:
        quota = QuotaBook.of(snapshot.projects, [r.job for r in snapshot.running])
        return cls(
            snapshot,
            policy,
            now,
            _type_states(snapshot, quota, now),
            quota,
            BudgetBook.of(snapshot.projects, snapshot.running, now),
            ClusterShape.of(snapshot.nodes),
            ClusterShape.of(n for n in snapshot.nodes if n.state is NodeState.UP),
        )

    @property
    def shadows(self) -> dict[GpuType, Shadow]:
        return {t: s.shadow for t, s in self.types.items() if s.shadow is not None}

    # -- closed types: nothing more starts, only reclaim and reasons remain ----------------

    def reclaim_in_tails(self) -> None:
        """Step 3 for closed types: only a job within its nominal quota can still act, by
        reclaiming. The other jobs of the tails decide nothing, so considering just these,
        in queue order, makes the same decisions as considering every job."""
        if not (self.policy.quotas and self.policy.backfill):
            return
        owed = []
        for t, state in self.types.items():
            headroom = self._headroom(t)  # only shrinks from here: a superset is taken
            owed.append(
                [(i, job) for i, job in state.tail if job.gpus <= headroom.get(job.project, 0)]
            )
        for position, job in heapq.merge(*owed, key=lambda item: item[0]):
            self.position = position
            self.consider(job)

    def _headroom(self, gpu_type: GpuType) -> dict[ProjectId, int]:
        usage = self.quota.usage
        return {
            pid: q.nominal - usage[(pid, gpu_type)]
            for pid, p in self.snapshot.projects.items()
            if (q := p.quotas.get(gpu_type)) is not None and q.nominal > usage[(pid, gpu_type)]
        }

    def explain_tails(self) -> None:
        """Step 5 for closed types' tails, in queue order, as if each had been considered in
        its turn: nothing these jobs see changes after their type closed."""
        for _, state in sorted(self.types.items()):
            if state.closed is None:
                continue
            state.waiting = state.closed
            assert state.usage_at_close is not None
            self.quota.restore(state.usage_at_close)  # replayed below, job by job
            for _, job in state.tail:
                said = self.reasons.get(job.id)
                if said is not None and said.code is ReasonCode.RECLAIMING:
                    state.waiting += 1
                    self.quota.add(job, job.gpus)
                else:
                    self.consider(job)

    # -- the steps for one job ------------------------------------------------------------

    def consider(self, job: Job) -> None:
        problems = self._problems(job)
        if problems:
            self._wait(job, Reason(ReasonCode.INVALID, "; ".join(problems)))
            return
        state = self.types[job.gpu_type]
        fit = self.quota.check(job) if self.policy.quotas else Fit.NOMINAL  # step 2
        if isinstance(fit, Reason):
            self._wait(job, fit)
            return
        over_budget = self.budget.check(job) if self.policy.budgets else None
        if over_budget is not None:
            self._wait(job, over_budget)
            return
        shadow = state.shadow
        if shadow is not None and not self.policy.backfill:  # step 4, strict order
            self._wait(
                job, reasons.priority(job, shadow.job, shadow.start, self.now, state.waiting)
            )
            return
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
            return
        if fit is Fit.NOMINAL and self.policy.quotas and self._reclaim(job, state, exclude):
            return  # step 3
        self._blocked(job, state, late, exclude)

    def _wait(self, job: Job, reason: Reason) -> None:  # step 5
        self.reasons[job.id] = reason
        if reason.code is not ReasonCode.INVALID:
            self.types[job.gpu_type].waiting += 1

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
        stops += [state.stopping_until[i] for i, n in plan.claimed.items() if n > 0]
        start = Instant(max([self.now, *stops]))
        state.reclaimer.commit(plan, lambda victim: self._preempt(victim, job, state))
        self.quota.add(job, job.gpus)  # Q1: what it reclaims counts as its own from now on
        if state.shadow is None:  # step 4: the reclaiming job holds the line for its type
            slack = _slack_after(pool, plan)
            state.shadow = Shadow(job, start, plan.parts, slack)
            pool.reserve_late(list(slack))
        else:
            for victim in plan.victims:  # GPUs the promise did not count on (see reclaim.Cap)
                if victim.end_bound > state.shadow.start:
                    pool.shrink_slack(
                        [(pool.index[n], -len(ix)) for n, ix in victim.allocation.parts]
                    )
            pool.shrink_slack(plan.parts)
        self._wait(job, reasons.reclaiming(job, len(plan.victims), start, self.now))
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

    def _blocked(self, job: Job, state: _TypeState, late: bool, exclude: frozenset[int]) -> None:
        if state.shadow is None:
            self._promise(job, state)
            return
        shadow, pool = state.shadow, state.pool
        if late and pool.now.find(job.gpus, job.gpus_per_node, job.one_domain, exclude) is not None:
            self._wait(job, reasons.backfill(job, shadow.job, shadow.start, self.now))
        elif exclude and pool.view_for(late).find(
            job.gpus, job.gpus_per_node, job.one_domain, NOTHING
        ):
            self._wait(job, reasons.reserved(job, None, self.now))
        else:
            free = pool.view_for(late).largest_hole(job.gpus_per_node, job.one_domain)
            self._wait(job, reasons.resources(job, free, self.now, None, state.waiting))

    def _promise(self, job: Job, state: _TypeState) -> None:
        pool = state.pool
        stops = state.stops
        releases: list[Release] = sorted(
            (min(at, stops[jid]) if jid in stops else at, i, n) for at, i, n, jid in state.releases
        )
        opens = sorted({r.end for r, _ in state.reservations if r.project != job.project})
        shadow = find_shadow(
            pool, releases, job, self.now, lambda at: self._excluded(job, state, at), opens
        )
        exclude = self._excluded(job, state, self.now)
        if exclude and pool.now.find(job.gpus, job.gpus_per_node, job.one_domain, NOTHING):
            start = shadow.start if shadow is not None else None
            self._wait(job, reasons.reserved(job, start, self.now))
        elif shadow is None:
            problems = validate_job(job, self.up)
            if problems:
                self._wait(job, reasons.capacity(job, problems))
                return
            free = pool.now.largest_hole(job.gpus_per_node, job.one_domain)
            self._wait(job, reasons.resources(job, free, self.now, None, state.waiting))
            return
        else:
            free = pool.now.largest_hole(job.gpus_per_node, job.one_domain)
            self._wait(job, reasons.resources(job, free, self.now, shadow.start, state.waiting))
        if shadow is not None:
            state.shadow = shadow
            pool.reserve_late(list(shadow.slack))

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


def _slack_after(pool: Pool, plan: Plan) -> list[int]:
    """GPUs per node free once the plan's victims have stopped, less what the plan takes."""
    slack = list(pool.now.usable)
    for i, n in plan.freed.items():
        slack[i] += n
    for i, n in plan.parts:
        slack[i] -= n
    return [max(0, s) for s in slack]


def _type_states(snapshot: Snapshot, quota: QuotaBook, now: Instant) -> dict[GpuType, _TypeState]:
    by_type: dict[GpuType, list[int]] = defaultdict(list)
    for k, node in enumerate(snapshot.nodes):
        by_type[node.gpu_type].append(k)
    running: dict[GpuType, list[RunningJob]] = defaultdict(list)
    for r in snapshot.running:
        running[r.job.gpu_type].append(r)
    states = {}
    for t, ks in by_type.items():
        pool = Pool([snapshot.nodes[k] for k in ks])
        states[t] = _state(pool, running[t], snapshot, quota, now)
    return states


def _state(
    pool: Pool, running: list[RunningJob], snapshot: Snapshot, quota: QuotaBook, now: Instant
) -> _TypeState:
    releases = []
    releasing = [0] * len(pool.nodes)
    stopping_until = [now] * len(pool.nodes)
    kept: defaultdict[tuple[ProjectId, GpuType], int] = defaultdict(int)
    for r in running:
        for node, indices in r.allocation.parts:
            i = pool.index[node]
            pool.hold(node, indices)
            releases.append((Instant(max(r.end_bound, now)), i, len(indices), r.job.id))
            if r.stopping_at is not None and pool.schedulable[i]:
                releasing[i] += len(indices)
                stopping_until[i] = Instant(max(stopping_until[i], r.stopping_at))
        if r.stopping_at is not None:
            kept[(r.job.project, r.job.gpu_type)] += r.job.gpus
    releases.sort()
    movable = candidates([r for r in running if r.stopping_at is None])
    reclaimer = Reclaimer(pool, quota, movable, releasing, kept, now)
    reserved = _reservations(pool, snapshot.reservations, now)
    return _TypeState(pool, releases, reclaimer, reserved, stopping_until)


def _reservations(
    pool: Pool, reservations: Iterable[Reservation], now: Instant
) -> list[tuple[Reservation, frozenset[int]]]:
    out = []
    for r in reservations:
        nodes = frozenset(pool.index[n] for n in r.nodes if n in pool.index)
        if nodes and r.end > now:
            out.append((r, nodes))
    return out
