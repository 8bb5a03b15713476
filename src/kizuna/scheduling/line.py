"""Step 4 of a cycle: the line a blocked job holds, and the reasons of jobs that wait.

The highest blocked job of each GPU type is promised a start (EASY backfill, ADR 0006):
`find_shadow` gives when and where, and the promise (`Promise`) keeps what it needs besides
GPUs. Later jobs start only where they cannot delay it; the others are told why they wait.
A mixin of the cycle (cycle.py), which supplies the books it reads.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence

from kizuna.kernel.ids import CohortId, JobId, ProjectId
from kizuna.kernel.units import UNLIMITED, Instant
from kizuna.scheduling import reasons
from kizuna.scheduling.backfill import Promise, Release, Shadow, find_shadow
from kizuna.scheduling.budget import BudgetBook, Holding
from kizuna.scheduling.decisions import Reason
from kizuna.scheduling.model import Job, Snapshot
from kizuna.scheduling.policies.base import Policy, SortKey
from kizuna.scheduling.quota import QuotaBook
from kizuna.scheduling.type_state import BACKFILL, NOTHING, RESERVED, Outcome, TypeState
from kizuna.scheduling.validation import ClusterShape, validate_job


class LineSteps:
    """Step 4, for the cycle to inherit; the attributes below are the cycle's."""

    snapshot: Snapshot
    policy: Policy
    now: Instant
    quota: QuotaBook
    budget: BudgetBook
    up: ClusterShape
    reasons: dict[JobId, Reason]
    holding: Holding
    _admitted_jobs: list[Job]
    position: tuple[int, SortKey]

    def _wait(self, job: Job, reason: Reason) -> Outcome:  # step 5
        self.reasons[job.id] = reason
        return Outcome.WAITING

    def _blocked(self, job: Job, state: TypeState, late: bool, exclude: frozenset[int]) -> Outcome:
        if state.shadow is None:
            return self._promise(job, state, exclude)
        shadow, pool = state.shadow, state.pool
        said = state.said
        if late and pool.now.fits(job.gpus, job.gpus_per_node, job.one_domain, exclude):
            found = said.get(BACKFILL)
            if found is None:
                found = said[BACKFILL] = reasons.backfill(job, shadow.job, shadow.start, self.now)
            return self._wait(job, found)
        if exclude and pool.view_for(late).fits(
            job.gpus, job.gpus_per_node, job.one_domain, NOTHING
        ):
            found = said.get(RESERVED)
            if found is None:
                found = said[RESERVED] = reasons.reserved(job, None, self.now)
            return self._wait(job, found)
        return self._wait(job, self._behind(job, state))

    def _behind(self, job: Job, state: TypeState) -> Reason:
        """`reasons.behind` (or, without backfill, `reasons.priority`) for a job after the
        head of its type: shared by jobs asking alike, since nothing else enters the
        sentence (ADR 0020)."""
        shadow = state.shadow
        assert shadow is not None, "only jobs after the head wait behind it"
        asked = (job.gpu_type, job.gpus, job.gpus_per_node, job.one_domain)
        said = state.said.get(asked)
        if said is None:
            if self.policy.backfill:
                said = reasons.behind(job, shadow.job, shadow.start, self.now)
            else:
                said = reasons.priority(job, shadow.job, shadow.start, self.now)
            state.said[asked] = said
        return said

    def _promise(self, job: Job, state: TypeState, exclude: frozenset[int]) -> Outcome:
        """Step 4 for the highest blocked job of its type: find its earliest start."""
        shadow = self._shadow(job, state, exclude)
        pool = state.pool
        if exclude and pool.now.fits(job.gpus, job.gpus_per_node, job.one_domain, NOTHING):
            start = shadow.start if shadow is not None else None
            outcome = self._wait(job, reasons.reserved(job, start, self.now))
        elif shadow is None and (problems := validate_job(job, self.up)):
            return self._wait(job, reasons.capacity(job, problems))
        else:
            free = pool.now.largest_hole(job.gpus_per_node, job.one_domain)
            start = shadow.start if shadow is not None else None
            outcome = self._wait(job, reasons.resources(job, free, self.now, start))
        if shadow is not None:
            self._hold_line(state, shadow, counted=False)
        return outcome

    def _hold_line(self, state: TypeState, shadow: Shadow, counted: bool) -> None:
        """Step 4: the promise to the highest blocked job, in GPUs (the slack of each node),
        and in the quota and budget it will need until and at its promised start (ADR 0006,
        rule B2)."""
        state.shadow, state.head_at = shadow, self.position
        state.pool.reserve_late(list(shadow.slack))
        head, t = shadow.job, shadow.job.gpu_type
        rooms: tuple[CohortId | None, float, float, float, float]
        if not self.policy.quotas:
            rooms = (None, UNLIMITED, UNLIMITED, UNLIMITED, UNLIMITED)
        else:
            rooms = self._quota_rooms(state, shadow, 0 if counted else head.gpus)
        left = self.budget.remaining(head.project, t) if self.policy.budgets else None
        budget = UNLIMITED if left is None else left - head.gpus * head.walltime
        state.promise = Promise(head.project, rooms[0], *rooms[1:], budget, self.quota)

    def _quota_rooms(
        self, state: TypeState, shadow: Shadow, need: int
    ) -> tuple[CohortId | None, float, float, float, float]:
        """(cohort if the head borrows; project room now; cohort room now; project room at
        the start; cohort room at the start). `need` is what the head adds when it starts."""
        head, t = shadow.job, shadow.job.gpu_type
        quota, cohort = self.quota.quota(head.project, t), self.quota.cohort(head.project)
        used = self.quota.usage[(head.project, t)] + need
        then = self._held_at(state, shadow.start, {head.project}) + need
        if used <= quota.nominal:  # within nominal now: keep it so (Q1)
            return None, quota.nominal - used, UNLIMITED, quota.nominal - then, UNLIMITED
        limit = quota.borrowing_limit
        top = quota.nominal + limit if limit is not None else UNLIMITED
        members = {p.id for p in self.snapshot.projects.values() if p.cohort == cohort}
        pool = self.quota.cohort_nominal.get((cohort, t), 0) if cohort is not None else 0
        lent_now = self.quota.cohort_usage[(cohort, t)] if cohort is not None else 0
        lent_then = self._held_at(state, shadow.start, members)
        return (
            cohort,
            top - used,
            pool - lent_now - need,
            top - then,
            pool - lent_then - need,
        )

    def _held_at(self, state: TypeState, at: Instant, projects: set[ProjectId]) -> int:
        """GPUs of this type these projects will still hold at `at`, as far as is known now:
        running jobs until their end bound (this cycle's victims until their grace ends),
        jobs admitted this cycle until their walltime ends."""
        t = state.pool.nodes[0].gpu_type
        held = sum(self.quota.usage[(p, t)] for p in projects)
        stops = state.stops
        for p in projects:
            for r in self.holding.get((p, t), {}).values():
                end = r.end_bound
                if min(end, stops.get(r.job.id, end)) <= at:
                    held -= r.job.gpus
        for job in self._admitted_jobs:
            if job.gpu_type == t and job.project in projects and self.now + job.walltime <= at:
                held -= job.gpus
        return held

    def _shadow(self, job: Job, state: TypeState, exclude: frozenset[int]) -> Shadow | None:
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

    def _releases(self, state: TypeState, job: Job) -> Sequence[Release]:
        """When running jobs give their GPUs back to `job` at the latest: this cycle's victims
        early; GPUs kept for another waiting job never (R6)."""
        stops, owner_of = state.stops, state.owner_of
        if not state.moving:  # none kept for one job, no victim this cycle
            return state.releases  # kept sorted (never changed in place)
        # the few jobs' releases taken out where they are (each as the occupancy made it:
        # end bound, node, GPUs, job), and put back, each in its place, where they still count
        out, index, back = list(state.releases), state.pool.index, []
        for jid, r in state.moving.items():
            end, mine = r.end_bound, owner_of.get(jid, job.id) == job.id
            for node, indices in r.allocation.parts:
                release = (end, index[node], len(indices), jid)
                at = bisect_left(out, release)
                if at == len(out) or out[at] != release:
                    raise AssertionError(f"no release of job {jid} on node {node} to move")
                del out[at]
                if mine:
                    back.append((min(end, stops[jid]) if jid in stops else end, *release[1:]))
        for release in back:
            insort(out, release)
        return out

    def _excluded(self, job: Job, state: TypeState, start: Instant) -> frozenset[int]:
        """Nodes reserved for other projects that `job`, started at `start`, may not use."""
        if not state.reservations:
            return NOTHING
        end = start + job.walltime
        out: set[int] = set()
        for r, nodes in state.reservations:
            if r.project != job.project and end > r.start and start < r.end:
                out |= nodes
        return frozenset(out)
