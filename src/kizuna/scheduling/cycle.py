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

import math
from bisect import insort
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from heapq import heapify, heappop, heapreplace
from operator import itemgetter

from kizuna.kernel.ids import GpuType, JobId, ProjectId
from kizuna.kernel.units import UNLIMITED, Instant
from kizuna.scheduling import reasons
from kizuna.scheduling.backfill import Shadow, free_at
from kizuna.scheduling.budget import BudgetBook, Commitments, Holding
from kizuna.scheduling.capacity import View
from kizuna.scheduling.decisions import (
    Admission,
    CycleResult,
    Preemption,
    Reason,
    ReasonCode,
    ShadowReservation,
)
from kizuna.scheduling.line import LineSteps
from kizuna.scheduling.model import Job, RunningJob, Shape, Snapshot
from kizuna.scheduling.occupancy import Occupancy
from kizuna.scheduling.policies.base import Policy, SortKey
from kizuna.scheduling.queue import NO_GANG, Entry, Group, GroupKey, Order, Queue
from kizuna.scheduling.quota import Fit, QuotaBook
from kizuna.scheduling.reclaim import Cap
from kizuna.scheduling.type_state import (
    BACKFILL,
    NOTHING,
    Alike,
    Outcome,
    TypeState,
    type_state,
)
from kizuna.scheduling.validation import ClusterShape, validate_job
from kizuna.scheduling.views import LazyOrder, LazyReasons


def run_cycle(snapshot: Snapshot, policy: Policy, now: Instant) -> CycleResult:
    """Decide which pending jobs start where, which running jobs are preempted, and why the
    rest wait. Pure: the same arguments always give the same result."""
    return cycle_on(Occupancy.of(snapshot), Queue.of(policy, snapshot, now), policy, now)


def cycle_on(occupancy: Occupancy, queue: Queue, policy: Policy, now: Instant) -> CycleResult:
    """`run_cycle` on what is already derived from the snapshot: the occupancy of its running
    jobs and its queue (step 1). A `Scheduler` keeps both between cycles."""
    return walk(occupancy, queue, policy, now).result()


def walk(occupancy: Occupancy, queue: Queue, policy: Policy, now: Instant) -> _Cycle:
    """Steps 2-4 of a cycle, kept for its result and for what it proves (quiet.py)."""
    cycle = _Cycle.build(occupancy, queue, policy, now)
    cycle.run()
    return cycle


Position = tuple[int, SortKey]
"""Where a job stands in the walk of a cycle: its phase (Q5), then its key in the queue."""


@dataclass
class _Cycle(LineSteps):
    snapshot: Snapshot
    queue: Queue
    policy: Policy
    now: Instant
    types: dict[GpuType, TypeState]
    quota: QuotaBook
    budget: BudgetBook
    cluster: ClusterShape
    up: ClusterShape
    room: dict[tuple[ProjectId, GpuType], int]
    """GPUs each project may still take within its nominal quota as the cycle starts."""
    admissions: list[Admission] = field(default_factory=list)
    preemptions: list[tuple[Position, Preemption]] = field(default_factory=list)
    """With the position of the job they make room for: the order decisions were made in."""
    position: Position = (0, ())
    """The position of the job being considered."""
    _admitted_jobs: list[Job] = field(default_factory=list)
    holding: Holding = field(default_factory=dict)
    """Running jobs per (project, type), from the occupancy."""
    order: Order | None = None
    """The queue's order as this cycle saw it: a `Scheduler` updates its queue later, while
    this cycle's reasons may still be read."""
    seen: set[JobId] = field(default_factory=set)
    """Jobs considered in their turn; the others are explained later."""
    walked: list[tuple[Position, Job]] = field(default_factory=list)
    """The jobs of `seen`, where they stood, in the order they were considered."""
    events: dict[JobId, Outcome] = field(default_factory=dict)
    """Jobs admitted or reclaiming: what `explain` books again."""
    reasons: dict[JobId, Reason] = field(default_factory=dict)
    quota_said: dict[tuple[ProjectId, GpuType, int], tuple[int, Fit | Reason]] = field(
        default_factory=dict
    )
    allowed_at: dict[GroupKey, tuple[int, int, tuple[int, float]]] = field(default_factory=dict)
    """`_allowed` per group, with the versions of the quota and budget books it was
    worked out at."""

    @classmethod
    def build(cls, occupancy: Occupancy, queue: Queue, policy: Policy, now: Instant) -> _Cycle:
        snapshot = occupancy.snapshot
        quota = occupancy.quota.fork()
        types = {
            t: type_state(held, snapshot.reservations, quota, queue, now)
            for t, held in occupancy.types.items()
        }
        holding = dict(occupancy.holding)  # the occupancy moves on; reasons may be read later
        budget = BudgetBook(snapshot.projects, Commitments(holding, now))
        for t, state in types.items():
            state.books_at_start = (quota.saved(t), budget.saved(t))
        return cls(
            snapshot,
            queue,
            policy,
            now,
            types,
            quota,
            budget,
            occupancy.cluster,
            occupancy.up,
            occupancy.headroom() if policy.quotas else {},
            holding=holding,
            order=queue.order(),
        )

    def result(self) -> CycleResult:
        """What the walk decided; reasons and the order are worked out when first read."""
        held = sorted((t, s.shadow) for t, s in self.types.items() if s.shadow is not None)
        return CycleResult(
            admissions=tuple(self.admissions),
            preemptions=tuple(p for _, p in sorted(self.preemptions, key=itemgetter(0)))
            if self.preemptions
            else (),
            reasons=LazyReasons(self.reasons, self.explain),
            shadows=tuple(ShadowReservation(s.job.id, t, s.start) for t, s in held),
            order=LazyOrder(self.effective_order),
        )

    # -- the queue, and closed types --------------------------------------------------------

    def run(self) -> None:
        """Steps 2-5 in queue order for every job that could act. Jobs that provably decide
        nothing in their turn are passed over: those their project's quota or budget already
        refuses (both only tighten during a cycle), and, once the head of their type holds
        the line, those too large to fit that cannot reclaim. `explain` later gives each the
        very reason it would have got in its turn (ADR 0008)."""
        backfill, quotas, quota, types, seen, events, walked = (
            self.policy.backfill,
            self.policy.quotas,
            self.quota,
            self.types,
            self.seen,
            self.events,
            self.walked,
        )
        room_of = self.room
        for phase in (0, 1):  # Q5: within nominal quota first
            # the groups' streams merged by key (keys are unique), as `heapq.merge` would:
            # each stream's next job is asked for only once its last one was considered
            heap: list[tuple[SortKey, int, Job, Iterator[Entry]]] = []
            for gk, group in self._groups(phase):
                # can any job of the group in this phase pass its quota and budget now?
                least = group.least_gpus
                room = room_of.get(gk, 0) if quotas else NO_GANG
                if phase == 0 and room < least:
                    continue
                most, work = self._allowed(gk, group)
                if most < least or work < group.least_work or (phase == 1 and most <= room):
                    continue
                stream = self._stream(gk, group, phase)
                first = next(stream, None)
                if first is not None:
                    heap.append((first[0], len(heap), first[1], stream))
            heapify(heap)
            while heap:
                key, order, job, stream = heap[0]
                state = types.get(job.gpu_type)
                if (
                    state is None
                    or job.gpus < state.closed_above
                    or (backfill and quota.within_nominal(job))
                ):
                    self.position = at = (phase, key)
                    seen.add(job.id)
                    walked.append((at, job))
                    outcome = self.consider(job)
                    if outcome is Outcome.ADMITTED or outcome is Outcome.RECLAIMING:
                        events[job.id] = outcome
                    if state is not None:
                        state.narrow(backfill)
                after = next(stream, None)
                if after is None:
                    heappop(heap)
                else:
                    heapreplace(heap, (after[0], order, after[1], stream))

    def _groups(self, phase: int) -> Iterable[tuple[GroupKey, Group]]:
        """The groups that may have jobs to walk in a phase: with quotas, in the first only
        those with room left within nominal quota (`room`), in the second none at all
        while no cohort can lend (then no project may take beyond what `room` gave it).
        The order does not matter: keys are unique."""
        groups = self.queue.groups
        if not self.policy.quotas:
            return groups.items()
        if phase == 0:
            if len(self.room) >= len(groups):
                return groups.items()
            return [(gk, groups[gk]) for gk in self.room if gk in groups]
        return groups.items() if self.quota.lends() else ()

    def _stream(  # noqa: PLR0915 (one generator keeps its bounds in locals: the replay's hottest loop)
        self, gk: GroupKey, group: Group, phase: int
    ) -> Iterator[Entry]:
        """The group's jobs of this phase that its quota and budget may still let through,
        and that could still act in their turn (`_acts_below`, ADR 0024), in queue order;
        it stops as soon as the books refuse even its smallest job, or none of its jobs
        could act. The group's two tiers are merged by key here, as the queue's `Order` merges
        them, and each tier's jobs outside the bounds as they stand are passed over before
        their keys are made (the bounds only tighten; a tier's next job, found before the
        other tier's was taken, meets every check again below). Where the group's shapes have
        bounds of their own, each job meets its shape's; a job with GPUs kept for it (R6)
        meets only the books' in the first phase: the reclaimer's failures are not its."""
        room = self.room.get(gk, 0) if self.policy.quotas else 1 << 30
        quota, budget = self.quota, self.budget
        seen_quota = seen_budget = -1
        most, work = 0, 0.0
        state = self.types.get(gk[1])
        least_gpus, least_work, first = group.least_gpus, group.least_work, phase == 0
        # the bounds: more than `low` and at most `high` GPUs (the phase, the books, what
        # could act), and, from `late_gpus` GPUs up, only jobs done by `late_start`
        low, high = (-(1 << 30), room) if first else (room, 1 << 30)
        late_gpus, late_start = NO_GANG, 0.0
        now = self.now
        books, acts, seen_acts = high, NO_GANG, (-1, -1, -1)
        # jobs with GPUs kept for them (R6) may reclaim what the reclaimer refuses the rest
        exempt = state.kept_for.get(group.project) if state is not None and first else None
        shaped: dict[Shape, tuple[int, int]] | None = None
        """`_acts_below` per shape, while the group's shapes have bounds of their own."""
        young, old = group.tiers
        level0, level1 = (self.queue.levels.level(group.project, tier) for tier in (0, 1))
        # each tier's jobs not yet looked at (None once all were): tiers never change in a walk
        rest0: Iterator[Entry] | None = iter(young)
        rest1: Iterator[Entry] | None = iter(old) if old else None
        head0: Entry | None = None
        head1: Entry | None = None
        while True:
            # the two branches mirror each other on purpose: a dispatching helper per job
            # fetched costs more than these lines, in the replay's hottest loop
            if exempt is None and shaped is None:
                bounds = (low, high, late_gpus, late_start, now)
                if head0 is None and rest0 is not None:
                    head0 = _next_within(rest0, level0, bounds)
                    rest0 = rest0 if head0 is not None else None
                if head1 is None and rest1 is not None:
                    head1 = _next_within(rest1, level1, bounds)
                    rest1 = rest1 if head1 is not None else None
            else:  # bounds of each job's own: its shape's, or only the books' (exempt)
                each = (low, books, acts, late_gpus, late_start, now, shaped, exempt)
                if head0 is None and rest0 is not None:
                    head0 = _next_within_each(rest0, level0, each)
                    rest0 = rest0 if head0 is not None else None
                if head1 is None and rest1 is not None:
                    head1 = _next_within_each(rest1, level1, each)
                    rest1 = rest1 if head1 is not None else None
            if head0 is None:
                if head1 is None:
                    return
                entry, head1 = head1, None
            elif head1 is None or head0[0] < head1[0]:
                entry, head0 = head0, None
            else:
                entry, head1 = head1, None
            j = entry[1]
            if (j.gpus <= room) is not first:
                continue
            if state is not None:
                view = state.pool.late
                at = (
                    state.closed_above,
                    state.reclaimer.failures,
                    view.failures if view is not None else -1,
                )
                if at != seen_acts:
                    seen_acts = at
                    acts, late_gpus, shaped = self._acts_below(group, state, first)
                    if acts <= least_gpus and exempt is None:
                        return  # its type is closed to every job of the group that could act
                    high = min(books, acts - 1)
                    if state.shadow is not None:
                        late_start = state.shadow.start
            if seen_quota != quota.version or seen_budget != budget.version:
                seen_quota, seen_budget = quota.version, budget.version
                most, work = self._allowed(gk, group)
                if most < least_gpus or work < least_work:
                    return
                books = min(most, room) if first else most
                high = min(books, acts - 1)
            a, late_from = (
                (acts, late_gpus)
                if shaped is None
                else shaped[(j.gpus_per_node or 0, j.one_domain)]
            )
            if (
                j.gpus <= most
                and j.gpus * j.walltime <= work
                and (
                    (j.gpus < a and (j.gpus < late_from or now + j.walltime <= late_start))
                    or (exempt is not None and j.id in exempt)
                )
            ):
                yield entry

    def _acts_below(
        self, group: Group, state: TypeState, first: bool
    ) -> tuple[int, int, dict[Shape, tuple[int, int]] | None]:
        """The smallest gang of the group that can no longer act this cycle, and the same
        for its jobs that would still run at the promised start of the type's head
        ("late"): the largest over the shapes the group asks, and, where they differ by
        shape, both per shape.

        Once the head holds the line, jobs of `closed_above` GPUs or more cannot start, so
        `run` passes them over, unless they are within their nominal quota and may reclaim
        (only in the first phase, Q5). A late job is placed on the `late` view, which never
        offers more than `now`: one of a size that view already refused for its shape
        cannot start either. Jobs that may reclaim wait all the same when the reclaimer
        already refuses their size and shape at once (a capped search: the head holds the
        line), unless GPUs are kept for them (R6: `_stream` lets those through). All of
        these would only wait, with the reason `explain` gives (`_waits_its_turn`).
        Reservations exclude nodes by a job's walltime: with them, only the closed size
        counts. Every bound only shrinks in a cycle: closed sizes, the views' and the
        reclaimer's memos (ADR 0024)."""
        closed, shapes = state.closed_above, group.shapes
        if state.shadow is None:
            return NO_GANG, NO_GANG, None
        reclaims = first and self.policy.quotas and self.policy.backfill
        if state.reservations:
            bound = NO_GANG if reclaims else closed
            return bound, bound, None
        late = state.pool.late
        failed = late.failed if late is not None and self.policy.backfill else {}
        reclaimer, project = state.reclaimer, group.project
        out: dict[Shape, tuple[int, int]] = {}
        for shape in shapes:
            refused_late = min(closed, failed.get((*shape, NOTHING), NO_GANG))
            if reclaims:
                refused = reclaimer.refuses_from(project, shape, True, NOTHING)
                out[shape] = (max(closed, refused), max(refused_late, refused))
            else:
                out[shape] = (closed, refused_late)
        if len(set(out.values())) == 1:
            acts, late_gpus = next(iter(out.values()))
            return acts, late_gpus, None
        return max(a for a, _ in out.values()), max(g for _, g in out.values()), out

    def _allowed(self, gk: GroupKey, group: Group) -> tuple[int, float]:
        """The largest gang and the most GPU-seconds a new job of the group may ask now
        (the budget is not worked out when the quota already refuses every job); kept
        while neither book changes."""
        quota_at, budget_at = self.quota.version, self.budget.version
        hit = self.allowed_at.get(gk)
        if hit is not None and hit[0] == quota_at and hit[1] == budget_at:
            return hit[2]
        most = self.quota.allowed(*gk) if self.policy.quotas else 1 << 30
        if most < group.least_gpus:
            found = most, 0.0
        else:
            left = self.budget.remaining(*gk) if self.policy.budgets else None
            found = most, (UNLIMITED if left is None else left)
        self.allowed_at[gk] = (quota_at, budget_at, found)
        return found

    # -- what a walk that decided nothing proves about the next (ADR 0026) ---------------

    def passes_over(self, job: Job, now: Instant) -> bool:
        """Would this walk pass `job` over without considering it, had it been pending (in
        the queue as the queue is now, under this walk's levels) and the clock at `now`?
        Asked only of a walk that decided nothing, with budgets off (quiet.py): its books
        are as they started and its bounds are final, and a job passed over only waits.
        True when its quota refuses it, wherever it stands; or when it stands after its
        type's head and `run` or `_stream` would pass it over by the bounds as they ended."""
        state = self.types.get(job.gpu_type)
        gk = (job.project, job.gpu_type)
        group = self.queue.groups.get(gk)
        held = self.queue.where.get(job.id)
        if state is None or group is None or held is None or self.policy.budgets:
            return False
        quotas = self.policy.quotas
        first = not quotas or job.gpus <= self.room.get(gk, 0)
        if quotas and job.gpus > self.quota.allowed(*gk):
            return True
        shadow, head_at = state.shadow, state.head_at
        if shadow is None or head_at is None or state.reservations:
            return False
        _, tier, rank = held
        if (0 if first else 1, self.queue.levels.key(job.project, tier, rank)) <= head_at:
            return False  # it would come before the head: it could start, or hold the line
        if job.gpus >= state.closed_above and not (
            self.policy.backfill and self.quota.within_nominal(job)
        ):
            return True
        if first and job.id in state.kept_for.get(job.project, ()):
            return False
        acts, late_gpus, shaped = self._acts_below(group, state, first)
        if shaped is not None:
            acts, late_gpus = shaped[(job.gpus_per_node or 0, job.one_domain)]
        return not (
            job.gpus < acts and (job.gpus < late_gpus or now + job.walltime <= shadow.start)
        )

    def in_time_until(self) -> float:
        """The last instant at which every job this walk considered after the head of its
        type would still be in time for the head's promised start if it did not start then
        (`late` in `_consider`) as it was: later, one of them would be late."""
        until = math.inf
        for at, job in self.walked:
            state = self.types.get(job.gpu_type)
            if state is None or state.shadow is None or state.head_at is None:
                continue
            if at > state.head_at and self.now + job.walltime <= state.shadow.start:
                until = min(until, state.shadow.start - job.walltime)
        return until

    def effective_order(self) -> list[Job]:
        """The queue as the cycle walks it: jobs within nominal quota first (Q5)."""
        jobs = self.order.jobs() if self.order is not None else []
        if not self.policy.quotas:
            return jobs
        room = self.room
        first: list[Job] = []
        rest: list[Job] = []
        for j in jobs:
            (first if j.gpus <= room.get((j.project, j.gpu_type), 0) else rest).append(j)
        return first + rest

    def explain(self) -> None:
        """Step 5 for the jobs passed over: the books are set back to the start of the cycle
        and walked in queue order, booking again what was admitted or reclaimed, so each job
        is told what it would have been told in its turn. GPU types keep separate books, so
        one walk serves them all."""
        for state in self.types.values():
            if state.books_at_start is not None:
                self.quota.restore(state.books_at_start[0])
                self.budget.restore(state.books_at_start[1])
        seen, events, quotas, reasons = self.seen, self.events, self.policy.quotas, self.reasons
        said, book = self.quota_said, self.quota
        taken: dict[GpuType, int] = dict.fromkeys(self.types, 0)
        """Admissions of each type so far in the walk: which `usable_log` entry was `now`."""
        for job in self.effective_order():
            if job.id in seen:
                if (outcome := events.get(job.id)) is not None:
                    self._replay(outcome, job)
                    if outcome is Outcome.ADMITTED:
                        taken[job.gpu_type] += 1
                continue
            if self._problems(job):
                self.consider(job)
                continue
            if quotas:  # the common case, refused by its quota, answered without `consider`
                hit = said.get((job.project, job.gpu_type, job.gpus))
                fit = hit[1] if hit is not None and hit[0] == book.version else None
                if fit is None:
                    fit = self._quota_fit(job)
                if isinstance(fit, Reason):
                    reasons[job.id] = fit
                    continue
            over = self.budget.check(job) if self.policy.budgets else None
            if over is not None:
                reasons[job.id] = over
                continue
            reasons[job.id] = self._waits_its_turn(job, taken[job.gpu_type])

    def _waits_its_turn(self, job: Job, taken: int) -> Reason:
        """The reason of a job passed over only because it could not start (ADR 0024): its
        quota and budget let it through, yet its type was closed to it, or it was late and
        the `late` view refused it, and it could not reclaim (`_acts_below`). As in
        `_blocked`: a late job that `now` could hold in its turn, after `taken` admissions
        of its type, would delay the head (backfill); any other waits behind it."""
        state = self.types[job.gpu_type]
        shadow = state.shadow
        assert shadow is not None, "only jobs after the head are passed over as closed"
        if self.policy.backfill and self.now + job.walltime > shadow.start:
            log, pool = state.usable_log, state.pool
            view = pool.now
            if log:
                view = state.views_then.get(taken) or state.views_then.setdefault(
                    taken, View(pool.topo, list(log[taken]))
                )
            if view.fits(job.gpus, job.gpus_per_node, job.one_domain, NOTHING):
                found = state.said.get(BACKFILL)
                if found is None:
                    found = state.said[BACKFILL] = reasons.backfill(
                        job, shadow.job, shadow.start, self.now
                    )
                return found
        return self._behind(job, state)

    def _replay(self, outcome: Outcome, job: Job) -> None:
        """Book again what a job took in its turn."""
        self.quota.add(job, job.gpus)
        if outcome is Outcome.ADMITTED and self.policy.budgets:
            self.budget.commit(job)

    # -- the steps for one job ------------------------------------------------------------

    def consider(self, job: Job) -> Outcome:
        """Steps 2-4 for one job. A job like one that just waited, asked while nothing it
        depends on changed, waits for the same reason (ADR 0020)."""
        state = self.types.get(job.gpu_type)
        key = self._alike(job, state)
        if key is None or state is None:
            return self._consider(job)
        stamp = self._stamp(state)
        hit = state.waits.get(key)
        if hit is not None and hit[0] == stamp:
            self.reasons[job.id] = hit[1]
            return Outcome.WAITING
        outcome = self._consider(job)
        if outcome is Outcome.WAITING and self._stamp(state) == stamp:
            state.waits[key] = (stamp, self.reasons[job.id])
        return outcome

    def _alike(self, job: Job, state: TypeState | None) -> Alike | None:
        """What `consider` reads of a job once its type's head holds the line, when nothing
        else of the job enters it: no reservations (which depend on its walltime) and no
        GPUs earmarked for it (R6). Its walltime enters only as `late` (and as work, with
        budgets)."""
        if state is None or state.shadow is None or state.reservations:
            return None
        if job.id in state.reclaimer.earmarked:
            return None
        return (
            job.project,
            job.gpus,
            job.gpus_per_node,
            job.one_domain,
            self.now + job.walltime > state.shadow.start,
            job.walltime > 0 and job.grace >= 0 and job.min_runtime >= 0,
            job.walltime if self.policy.budgets else None,
        )

    def _stamp(self, state: TypeState) -> tuple[int, int, int, int]:
        """Changes whenever anything `consider` reads could have: every admission or reclaim
        books quota (the reclaimer's state changes with it), every placement takes GPUs
        from `now`, every promise kept shrinks `late`'s slack."""
        late = state.pool.late
        return (
            self.quota.version,
            self.budget.version,
            state.pool.now.version,
            late.version if late is not None else -1,
        )

    def _consider(self, job: Job) -> Outcome:
        problems = self._problems(job)
        if problems:
            self.reasons[job.id] = Reason(ReasonCode.INVALID, "; ".join(problems))
            return Outcome.INVALID
        state = self.types[job.gpu_type]
        fit = self._quota_fit(job) if self.policy.quotas else Fit.NOMINAL  # step 2
        if isinstance(fit, Reason):
            return self._wait(job, fit)
        over_budget = self.budget.check(job) if self.policy.budgets else None
        if over_budget is not None:
            return self._wait(job, over_budget)
        shadow = state.shadow
        if shadow is not None and not self.policy.backfill:  # step 4, strict order
            return self._wait(job, reasons.priority(job, shadow.job, shadow.start, self.now))
        late = shadow is not None and self.now + job.walltime > shadow.start
        exclude = self._excluded(job, state, self.now)
        parts = state.pool.view_for(late).find(job.gpus, job.gpus_per_node, job.one_domain, exclude)
        borrows = fit is Fit.BORROWING
        if parts is not None and shadow is not None:
            taken = state.promise.refusal(job, late, borrows)
            if taken is not None:
                return self._wait(job, reasons.kept(job, shadow.job, shadow.start, self.now, taken))
        if parts is not None:
            if shadow is not None:
                state.promise.book(job, late, borrows)
            log = state.usable_log
            if not log:
                log.append(list(state.pool.now.usable))
            allocation = state.pool.take(parts, late)
            log.append(list(state.pool.now.usable))
            end = Instant(self.now + job.walltime)
            releases = list(state.releases)  # a new list: the occupancy's is shared
            for i, n in parts:
                insort(releases, (end, i, n, job.id))
            state.releases = releases
            self.quota.add(job, job.gpus)
            if self.policy.budgets:  # with budgets off nothing reads the budget book
                self.budget.commit(job)
            self.admissions.append(
                Admission(job.id, allocation, fit is Fit.BORROWING, shadow is not None)
            )
            self._admitted_jobs.append(job)
            return Outcome.ADMITTED
        if fit is Fit.NOMINAL and self.policy.quotas and self._reclaim(job, state, exclude):
            return Outcome.RECLAIMING  # step 3
        return self._blocked(job, state, late, exclude)

    def _quota_fit(self, job: Job) -> Fit | Reason:
        """The quota's answer, shared by jobs of one project, type and size until usage
        changes: tens of thousands of waiting jobs ask the same question."""
        asked = (job.project, job.gpu_type, job.gpus)
        said = self.quota_said.get(asked)
        if said is not None and said[0] == self.quota.version:
            return said[1]
        fit = self.quota.check(job)
        self.quota_said[asked] = (self.quota.version, fit)
        return fit

    def _problems(self, job: Job) -> list[str]:
        """Validation: jobs of one kind of request and sane times share their answer
        (`ClusterShape.verdicts`); other jobs are told about their own times."""
        if not (job.walltime > 0 and job.grace >= 0 and job.min_runtime >= 0):
            return validate_job(job, self.cluster)
        key = (job.gpu_type, job.gpus, job.gpus_per_node, job.one_domain)
        verdicts = self.cluster.verdicts
        found = verdicts.get(key)
        if found is None:
            found = verdicts[key] = validate_job(job, self.cluster)
        return found

    # -- step 3: reclaim --------------------------------------------------------------------

    def _reclaim(self, job: Job, state: TypeState, exclude: frozenset[int]) -> bool:
        pool = state.pool
        cap = Cap(pool.slack, state.shadow.start) if state.shadow is not None else None
        for _ in range(3):  # the plan's start may fall in a reservation: plan for that start
            plan = state.reclaimer.plan(job, exclude, cap)
            if plan is None:
                return False
            stops = [self.now + v.job.grace for v in plan.victims]
            stops += [state.stopping_until[i] for i, n in plan.freed.items() if n > 0]
            start = Instant(max([self.now, *stops]))
            later = self._excluded(job, state, start)
            if later <= exclude:
                break
            exclude = exclude | later
        else:
            return False
        state.reclaimer.commit(plan, lambda victim: self._preempt(victim, job, state))
        self.quota.add(job, job.gpus)  # Q1: what it reclaims counts as its own from now on
        if state.shadow is None:  # step 4: the reclaiming job holds the line for its type
            slack = free_at(pool, self._releases(state, job), start)
            for i, n in plan.parts:
                slack[i] = max(0, slack[i] - n)
            self._hold_line(state, Shadow(job, start, plan.parts, slack), counted=True)
        else:
            pool.shrink_slack([(i, -n) for i, n in plan.own.items()])  # R6: not in the promise
            for victim in plan.victims:  # GPUs the promise did not count on (see reclaim.Cap)
                if victim.end_bound > state.shadow.start:
                    pool.shrink_slack(
                        [(pool.index[n], -len(ix)) for n, ix in victim.allocation.parts]
                    )
            pool.shrink_slack(plan.parts)
        self.reasons[job.id] = reasons.reclaiming(job, len(plan.victims), start, self.now)
        return True

    def _preempt(self, victim: RunningJob, job: Job, state: TypeState) -> None:
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
        state.moving[victim.job.id] = victim


Walk = _Cycle
"""A cycle walked: its decisions, and what `explain` and quiet.py read of it."""


def _next_within(
    rest: Iterator[Entry], level: int, bounds: tuple[int, int, int, float, float]
) -> Entry | None:
    """The next job of a tier's `rest` within `bounds` (low, high, late GPUs, late start,
    now: more than low and at most high GPUs; from late GPUs up, only a job done by the late
    start if it started now), with its key under `level`; the jobs before it are used up."""
    low, high, late_gpus, late_start, now = bounds
    for r, j in rest:
        g = j.gpus
        if low < g <= high and (g < late_gpus or now + j.walltime <= late_start):
            # concatenated, not unpacked: twice as fast, and this runs for every job walked
            key = (r[0] - level,) + r[1:] if level else r  # type: ignore[operator]  # noqa: RUF005
            return key, j
    return None


def _next_within_each(
    rest: Iterator[Entry],
    level: int,
    each: tuple[
        int, int, int, int, float, float, dict[Shape, tuple[int, int]] | None, set[JobId] | None
    ],
) -> Entry | None:
    """`_next_within` where the bounds differ by shape, or where some jobs need only fit the
    books: `each` is (low, books, acts, late GPUs, late start, now, the acts and late GPUs
    per shape or None, the jobs with GPUs kept for them or None)."""
    low, books, acts, late_gpus, late_start, now, shaped, exempt = each
    for r, j in rest:
        g = j.gpus
        if not low < g <= books:
            continue
        if shaped is not None:
            acts, late_gpus = shaped[(j.gpus_per_node or 0, j.one_domain)]
        if (g < acts and (g < late_gpus or now + j.walltime <= late_start)) or (
            exempt is not None and j.id in exempt
        ):
            key = (r[0] - level,) + r[1:] if level else r  # type: ignore[operator]  # noqa: RUF005
            return key, j
    return None
