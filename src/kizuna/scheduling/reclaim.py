"""Reclaim: preempt borrowed jobs so a project gets its nominal quota back (ADR 0009).

Rules, cited in code as R1..R5:
- R1 Only a job within its project's nominal quota may reclaim (quota rule Q1).
- R2 Victims run on GPUs of the same type, belong to other projects of the same cohort, and
     are taken only while their project still uses more than its nominal quota (Q4).
- R3 A victim must be preemptible and have run at least its minimum runtime.
- R4 GPUs already being released by earlier preemptions are used first; new victims are
     chosen lowest priority first, then most recently started, until the gang fits.
- R5 The chosen set is then made minimal: each victim is dropped again if the gang still fits
     without it (Kueue's minimal-preemption pass).
- R6 GPUs of jobs preempted for a job that still waits are kept for that job: no one else
     claims them, and they count for it before any GPU released for no one in particular.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import add

from kizuna.kernel.ids import CohortId, GpuType, JobId, ProjectId
from kizuna.kernel.units import Instant
from kizuna.scheduling.capacity import Pool
from kizuna.scheduling.model import Job, RunningJob, Shape
from kizuna.scheduling.occupancy import VictimKey
from kizuna.scheduling.placement import Parts, place
from kizuna.scheduling.quota import QuotaBook


@dataclass(frozen=True)
class Cap:
    """For a job that would still run at a promised start: per node, GPUs it may use (the
    slack), and that start. A victim still running at the start frees GPUs the promise did not
    count on, so they add to the slack (ADR 0006)."""

    slack: list[int]
    start: Instant


@dataclass(frozen=True)
class Plan:
    """GPUs to wait for: victims to preempt now, and GPUs claimed from earlier preemptions."""

    victims: tuple[RunningJob, ...]
    parts: Parts
    claimed: dict[int, int]
    """Per node, GPUs of already-stopping jobs this plan counts on."""
    freed: dict[int, int]
    """Per node, GPUs free once the plan's victims and claimed jobs have stopped."""
    own: dict[int, int]
    """Per node, GPUs released for this job alone that the plan uses (R6)."""


@dataclass
class _Ask:
    """One reclaim question: a job, the free GPUs it may use, and its limits."""

    job: Job
    base: list[int]
    exclude: frozenset[int]
    cap: Cap | None
    own: dict[int, int]
    """GPUs per node released for this job alone (R6)."""
    total: int | None = None
    """Free and releasing GPUs outside `exclude` (computed on first use)."""
    start: list[int] | None = None
    """Free plus releasing GPUs per node (computed on first use)."""
    cohort_short: bool = False
    """Set when not even the whole cohort's borrowed jobs would make room."""

    def free(self, node: int) -> int:
        return 0 if node in self.exclude else self.base[node]


@dataclass
class Reclaimer:
    """Chooses victims for one GPU type's pool; remembers victims chosen earlier in the cycle."""

    pool: Pool
    quota: QuotaBook
    of_project: Mapping[ProjectId, Sequence[tuple[VictimKey, RunningJob]]]
    """Each project's running jobs not yet stopping, in preemption order (R4); the
    occupancy's, never changed here."""
    movable: Sequence[int]
    """Per node, GPUs of preemptible jobs not yet stopping (the occupancy's)."""
    releasing: list[int]
    """Per node, GPUs of stopping jobs not yet claimed by a reclaiming job."""
    kept_by: defaultdict[tuple[ProjectId, GpuType], int]
    """GPUs per (project, type) that no longer count as borrowed: stopping or chosen victims."""
    now: Instant
    earmarked: dict[JobId, dict[int, int]] = field(default_factory=dict)
    """Per waiting job, GPUs per node of the jobs preempted for it (R6)."""
    chosen: set[str] = field(default_factory=set)
    members: dict[CohortId, list[ProjectId]] = field(default_factory=dict)
    """The projects of each cohort that run jobs of this type (computed on first use)."""
    by_cohort: dict[CohortId, list[RunningJob]] = field(default_factory=dict)
    """Preemptible borrowed jobs per cohort, valid until the next commit."""
    failed: dict[tuple[ProjectId, int, bool, bool, frozenset[int]], int] = field(
        default_factory=dict
    )
    """Smallest gang per (project, shape, capped, excluded nodes) that found no victims:
    reclaimable GPUs only shrink during a cycle, so a larger gang of that shape fails too."""
    failed_in: dict[tuple[str, int, bool, bool, frozenset[int]], int] = field(default_factory=dict)
    """The same per cohort, for a search with every borrowed job of the cohort: no project
    of the cohort can do better."""
    failures: int = 0
    """Bumped whenever `failed` or `failed_in` learns a smaller size."""
    eligible_at: float = float("inf")
    """The first instant a borrower this cycle left out for its minimum runtime (R3) may be
    preempted: until then every answer of this reclaimer holds (ADR 0026)."""

    def plan(self, job: Job, exclude: frozenset[int], cap: Cap | None) -> Plan | None:
        """Victims that let `job` fit on GPUs outside `exclude`: free ones, ones being
        released, and the victims' (each node limited by `cap` when given)."""
        shape: Shape = (job.gpus_per_node or 0, job.one_domain)
        capped = cap is not None
        # a job with GPUs kept for it (R6) may find room where others of its shape did not:
        # it never reads their failures (its own failure still holds for them)
        if job.id not in self.earmarked and job.gpus >= self.refuses_from(
            job.project, shape, capped, exclude
        ):
            return None
        key = (job.project, *shape, capped, exclude)
        wide = (self.quota.cohort(job.project) or "", *shape, capped, exclude)
        ask = _Ask(job, self.pool.now.usable, exclude, cap, self.earmarked.get(job.id, {}))
        plan = self._search(ask)
        if plan is None:
            self.failures += 1
            self.failed[key] = job.gpus
            if ask.cohort_short:
                self.failed_in[wide] = min(job.gpus, self.failed_in.get(wide, 1 << 30))
        return plan

    def refuses_from(
        self, project: ProjectId, shape: Shape, capped: bool, exclude: frozenset[int]
    ) -> int:
        """The smallest gang of `project` of this shape ((GPUs per node or 0, one domain))
        that `plan` refuses without a search, as things stand, to a job with no GPUs kept
        for it (R6: such a job never reads the failures); 1 << 30 if none."""
        cohort = self.quota.cohort(project) or ""
        failed, failed_in = self.failed, self.failed_in
        found = min(
            failed.get((project, *shape, capped, exclude), 1 << 30),
            failed_in.get((cohort, *shape, capped, exclude), 1 << 30),
        )
        if capped:
            # A capped search never finds more GPUs per node than an uncapped one (`_usable`),
            # and a job with no GPUs kept for it (R6) has no more than any job that asked
            # uncapped: their failures hold for it too (a refusal for that reason is not
            # remembered under the capped key; ADR 0024).
            found = min(
                found,
                failed.get((project, *shape, False, exclude), 1 << 30),
                failed_in.get((cohort, *shape, False, exclude), 1 << 30),
            )
        return found

    def _search(self, ask: _Ask) -> Plan | None:
        parts = self._fit_own(ask)
        if parts is not None:
            return self._plan(ask, (), parts)
        if self._fits(ask, ()):
            parts = self._fit(ask, ())
            assert parts is not None
            return self._plan(ask, (), parts)
        if self._ceiling(ask) < ask.job.gpus:
            ask.cohort_short = True
            return None  # even preempting every preemptible job would not make room
        eligible = self._eligible(ask.job)
        lo = self._enough(ask, eligible)
        if not eligible or not self._fits(ask, eligible[:lo]):
            cohort = self.quota.cohort(ask.job.project)
            if cohort is None or not self._fits(ask, self._borrowed(cohort)):
                ask.cohort_short = True
                return None  # not even with every borrowed job of the cohort, its own too
            if not eligible or not self._fits(ask, eligible):
                return None
            hi = len(eligible)  # R4: the shortest prefix of the preemption order that fits
            while lo < hi:
                mid = (lo + hi) // 2
                if not self._fits(ask, eligible[:mid]):
                    lo = mid + 1
                else:
                    hi = mid
        keep = eligible[:lo]
        for victim in reversed(eligible[:lo]):  # R5
            trial = [v for v in keep if v is not victim]
            if self._bound(ask, trial) >= ask.job.gpus and self._fits(ask, trial):
                keep = trial
        parts = self._fit(ask, keep)
        assert parts is not None
        return self._plan(ask, keep, parts)

    def _plan(self, ask: _Ask, victims: Sequence[RunningJob], parts: Parts) -> Plan:
        claims, freed, own = {}, {}, {}
        for i, n in parts:
            need = max(0, n - ask.free(i))
            own[i] = min(ask.own.get(i, 0), need)
            claims[i] = min(self.releasing[i], need - own[i])
            freed[i] = own[i] + claims[i]
        for victim in victims:
            for node, indices in victim.allocation.parts:
                i = self.pool.index[node]
                freed[i] = freed.get(i, 0) + len(indices)
        return Plan(tuple(victims), parts, claims, freed, own)

    def _ceiling(self, ask: _Ask) -> int:
        """GPUs usable if every preemptible job stopped: a bound that needs no victim search."""
        room: list[int] = list(map(add, map(add, ask.base, self.releasing), self.movable))
        for i, n in ask.own.items():
            room[i] += n
        if ask.cap is not None:
            limit: list[int] = list(map(add, ask.cap.slack, self.movable))
            for i, n in ask.own.items():
                limit[i] += n
            room = list(map(min, room, limit))
        return sum(room) - sum(room[i] for i in ask.exclude)

    def _borrowed(self, cohort: CohortId) -> list[RunningJob]:
        if cohort not in self.by_cohort:
            self.by_cohort[cohort] = self._borrowed_in(cohort)
        return self.by_cohort[cohort]

    def _eligible(self, job: Job) -> list[RunningJob]:
        cohort = self.quota.cohort(job.project)
        if cohort is None:
            return []
        return [r for r in self._borrowed(cohort) if r.job.project != job.project]  # R2

    def _borrowed_in(
        self, cohort: CohortId, only: set[ProjectId] | None = None
    ) -> list[RunningJob]:
        """The cohort's running jobs that may be preempted, in preemption order (R2-R4);
        with `only`, just those of these projects. Each project's are a prefix of its own
        jobs (R3's), taken while it still uses more than its nominal quota: so only
        borrowing projects' jobs are looked at (ADR 0020)."""
        if not self.members:
            for project in sorted(self.of_project):
                home = self.quota.cohort(project)
                if home is not None:
                    self.members.setdefault(home, []).append(project)
        projects = self.members.get(cohort, []) if only is None else sorted(only)
        out: list[tuple[VictimKey, RunningJob]] = []
        usage, kept_by, chosen, now = self.quota.usage, self.kept_by, self.chosen, self.now
        for project in projects:
            listed = self.of_project.get(project, ())
            if not listed:
                continue
            key = (project, listed[0][1].job.gpu_type)
            nominal = self.quota.quota(*key).nominal
            in_use = usage[key] - kept_by[key]
            for entry in listed:
                if in_use <= nominal:  # R2 / Q4: taking only lowers it
                    break
                victim = entry[1].job
                if victim.id in chosen or not victim.preemptible:
                    continue  # R2, R3
                if now - entry[1].start < victim.min_runtime:
                    self.eligible_at = min(self.eligible_at, entry[1].start + victim.min_runtime)
                    continue  # R3
                in_use -= victim.gpus
                out.append(entry)
        if only is None:
            out.sort()  # by victim key: keys are unique, no two jobs are compared
        return [r for _, r in out]

    def _bound(self, ask: _Ask, victims: Sequence[RunningJob]) -> int:
        """GPUs a fit could use at most: free, releasing and the victims', ignoring topology."""
        if ask.total is None:
            here = sum(ask.base) + sum(self.releasing) + sum(ask.own.values())
            gone = sum(ask.base[i] + self.releasing[i] + ask.own.get(i, 0) for i in ask.exclude)
            ask.total = here - gone
        return ask.total + sum(v.job.gpus for v in victims)

    def _enough(self, ask: _Ask, victims: Sequence[RunningJob]) -> int:
        """The shortest prefix of `victims` whose bound reaches the gang (at least 1)."""
        have = self._bound(ask, ())
        for count, victim in enumerate(victims, 1):
            have += victim.job.gpus
            if have >= ask.job.gpus:
                return count
        return max(1, len(victims))

    def _fit_own(self, ask: _Ask) -> Parts | None:
        """R6 first: a placement on the GPUs released for this job alone, if they suffice."""
        own = {i: n for i, n in ask.own.items() if i not in ask.exclude}
        job = ask.job
        if sum(own.values()) < job.gpus:
            return None
        if not job.gpus_per_node:  # the tightest single node that holds the gang, if any
            fits = [(n, i) for i, n in own.items() if n >= job.gpus]
            if fits:
                return [(min(fits)[1], job.gpus)]
        usable = [0] * len(self.pool.nodes)
        dom = [0] * len(self.pool.topo.domain_nodes)
        for i, n in own.items():
            usable[i] = n
            dom[self.pool.topo.domain_of[i]] += n
        return place(self.pool.topo, usable, dom, job.gpus, job.gpus_per_node, job.one_domain)

    def _fit(self, ask: _Ask, victims: Sequence[RunningJob]) -> Parts | None:
        usable = self._usable(ask, victims)
        if usable is None:
            return None
        job = ask.job
        return place(self.pool.topo, usable, None, job.gpus, job.gpus_per_node, job.one_domain)

    def _fits(self, ask: _Ask, victims: Sequence[RunningJob]) -> bool:
        """Would `_fit` place the gang? A gang that may span domains fits exactly when
        enough GPUs, or nodes with its GPUs per node, are usable (ADR 0007): counted, not
        placed; only the chosen victims' placement is worked out."""
        usable = self._usable(ask, victims)
        if usable is None:
            return False
        job = ask.job
        if job.one_domain:
            topo = self.pool.topo
            return place(topo, usable, None, job.gpus, job.gpus_per_node, True) is not None
        if job.gpus_per_node:
            per_node = job.gpus_per_node
            return sum(1 for u in usable if u >= per_node) >= job.gpus // per_node
        return True  # `_usable` checked the sum

    def _usable(self, ask: _Ask, victims: Sequence[RunningJob]) -> list[int] | None:
        """GPUs per node the job could use once `victims` stop, or None when not enough."""
        if self._bound(ask, victims) < ask.job.gpus:
            return None
        if ask.start is None:
            ask.start = [b + r for b, r in zip(ask.base, self.releasing, strict=True)]
        usable = list(ask.start)
        cap = ask.cap
        limit = list(cap.slack) if cap is not None else None
        for i, n in ask.own.items():  # R6: no promise counted on these
            usable[i] += n
            if limit is not None:
                limit[i] += n
        # a draining or down node takes no new job, freed or not
        index, schedulable = self.pool.index, self.pool.schedulable
        if cap is None or limit is None:
            for victim in victims:
                for node, indices in victim.allocation.parts:
                    i = index[node]
                    if schedulable[i]:
                        usable[i] += len(indices)
        else:
            for victim in victims:
                late = victim.end_bound > cap.start
                for node, indices in victim.allocation.parts:
                    i = index[node]
                    if schedulable[i]:
                        usable[i] += len(indices)
                        if late:
                            limit[i] += len(indices)
        if limit is not None:
            usable = list(map(min, usable, limit))
        for i in ask.exclude:
            usable[i] = 0
        if sum(usable) < ask.job.gpus:
            return None
        return usable

    def commit(self, plan: Plan, on_victim: Callable[[RunningJob], None]) -> None:
        """Record the plan: claimed GPUs are spoken for, victims stop counting as borrowed."""
        for i, n in plan.claimed.items():
            self.releasing[i] -= n
        for victim in plan.victims:
            self.chosen.add(victim.job.id)
            self.kept_by[(victim.job.project, victim.job.gpu_type)] += victim.job.gpus
            on_victim(victim)
        touched = {v.job.project for v in plan.victims}
        if not touched:
            return
        for cohort, listed in self.by_cohort.items():  # only the victims' projects change
            if any(r.job.project in touched for r in listed):
                again = {r.job.id for r in self._borrowed_in(cohort, touched)}
                self.by_cohort[cohort] = [  # eligibility only shrinks: filter the old list
                    r for r in listed if r.job.project not in touched or r.job.id in again
                ]
