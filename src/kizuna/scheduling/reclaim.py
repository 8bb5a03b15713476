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
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kizuna.kernel.ids import CohortId, GpuType, ProjectId
from kizuna.kernel.units import Instant
from kizuna.scheduling.capacity import Pool
from kizuna.scheduling.model import Job, RunningJob
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


def candidates(running: Sequence[RunningJob]) -> list[RunningJob]:
    """Running jobs in the order R4 preempts them: lowest priority, then most recently started."""
    return sorted(running, key=lambda r: (r.job.priority.value, -r.start, r.job.id))


@dataclass
class Reclaimer:
    """Chooses victims for one GPU type's pool; remembers victims chosen earlier in the cycle."""

    pool: Pool
    quota: QuotaBook
    ordered: list[RunningJob]
    releasing: list[int]
    """Per node, GPUs of stopping jobs not yet claimed by a reclaiming job."""
    kept_by: defaultdict[tuple[ProjectId, GpuType], int]
    """GPUs per (project, type) that no longer count as borrowed: stopping or chosen victims."""
    now: Instant
    chosen: set[str]
    movable: list[int]
    """Per node, GPUs of preemptible running jobs (computed on first use)."""
    by_cohort: dict[CohortId, list[RunningJob]]
    """Preemptible borrowed jobs per cohort, valid until the next commit."""
    failed: dict[tuple[ProjectId, int, bool, bool], int]
    failed_in: dict[tuple[str, int, bool, bool], int]
    """The same per (cohort, shape, capped), for a search with every borrowed job of the
    cohort: no project of the cohort can do better."""
    """Smallest gang per (project, shape, capped) that found no victims: reclaimable GPUs only
    shrink during a cycle, so a larger gang of that shape fails too."""

    def plan(self, job: Job, exclude: frozenset[int], cap: Cap | None) -> Plan | None:
        """Victims that let `job` fit on free GPUs outside `exclude` plus released GPUs (each
        node capped by `cap` when given)."""
        key = (job.project, job.gpus_per_node or 0, job.one_domain, cap is not None)
        cohort = self.quota.cohort(job.project)
        wide = (cohort or "", job.gpus_per_node or 0, job.one_domain, cap is not None)
        if job.gpus >= min(self.failed.get(key, 1 << 30), self.failed_in.get(wide, 1 << 30)):
            return None
        base = [0 if i in exclude else u for i, u in enumerate(self.pool.now.usable)]
        plan = self._search(job, base, cap)
        if plan is None:
            self.failed[key] = job.gpus
        return plan

    def _search(self, job: Job, base: list[int], cap: Cap | None) -> Plan | None:
        parts = self._fit(job, base, (), cap)
        if parts is not None:
            claims = self._claims(parts, base)
            return Plan((), parts, claims, claims)
        if self._ceiling(base, cap) < job.gpus:
            return None  # even preempting every preemptible job would not make room
        cohort = self.quota.cohort(job.project)
        if cohort is None or self._fit(job, base, self._borrowed(cohort), cap) is None:
            wide = (cohort or "", job.gpus_per_node or 0, job.one_domain, cap is not None)
            self.failed_in[wide] = min(job.gpus, self.failed_in.get(wide, 1 << 30))
            return None  # not even with every borrowed job of the cohort, the project's own too
        eligible = self._eligible(job)
        if not eligible or self._fit(job, base, eligible, cap) is None:
            return None
        lo, hi = 1, len(eligible)  # R4: the shortest prefix of the preemption order that fits
        while lo < hi:
            mid = (lo + hi) // 2
            if self._fit(job, base, eligible[:mid], cap) is None:
                lo = mid + 1
            else:
                hi = mid
        return self._minimal(job, base, eligible[:lo], cap)

    def _ceiling(self, base: list[int], cap: Cap | None) -> int:
        """GPUs usable if every preemptible job stopped: a bound that needs no victim search."""
        if not self.movable:
            self.movable = [0] * len(base)
            for r in self.ordered:
                if r.job.preemptible:
                    for node, indices in r.allocation.parts:
                        self.movable[self.pool.index[node]] += len(indices)
        room = [b + r + m for b, r, m in zip(base, self.releasing, self.movable, strict=True)]
        if cap is None:
            return sum(room)
        limit = [s + m for s, m in zip(cap.slack, self.movable, strict=True)]
        return sum(min(u, c) for u, c in zip(room, limit, strict=True))

    def _borrowed(self, cohort: CohortId) -> list[RunningJob]:
        if cohort not in self.by_cohort:
            self.by_cohort[cohort] = self._borrowed_in(cohort)
        return self.by_cohort[cohort]

    def _eligible(self, job: Job) -> list[RunningJob]:
        cohort = self.quota.cohort(job.project)
        if cohort is None:
            return []
        return [r for r in self._borrowed(cohort) if r.job.project != job.project]  # R2

    def _borrowed_in(self, cohort: CohortId) -> list[RunningJob]:
        """The cohort's running jobs that may be preempted, in preemption order (R2-R4)."""
        taken: defaultdict[ProjectId, int] = defaultdict(int)
        out = []
        for r in self.ordered:
            victim, project = r.job, r.job.project
            if r.job.id in self.chosen or self.quota.cohort(project) != cohort:
                continue  # R2
            if not victim.preemptible or self.now - r.start < victim.min_runtime:
                continue  # R3
            key = (project, victim.gpu_type)
            in_use = self.quota.usage[key] - self.kept_by[key] - taken[project]
            if in_use > self.quota.quota(project, victim.gpu_type).nominal:  # R2 / Q4
                taken[project] += victim.gpus
                out.append(r)
        return out

    def _minimal(
        self, job: Job, base: list[int], victims: list[RunningJob], cap: Cap | None
    ) -> Plan:
        keep = list(victims)
        for victim in reversed(victims):  # R5
            trial = [v for v in keep if v is not victim]
            if self._fit(job, base, trial, cap) is not None:
                keep = trial
        parts = self._fit(job, base, keep, cap)
        assert parts is not None
        claims = self._claims(parts, base)
        freed = dict(claims)
        for victim in keep:
            for node, indices in victim.allocation.parts:
                i = self.pool.index[node]
                freed[i] = freed.get(i, 0) + len(indices)
        return Plan(tuple(keep), parts, claims, freed)

    def _fit(
        self, job: Job, base: list[int], victims: Sequence[RunningJob], cap: Cap | None
    ) -> Parts | None:
        usable = [b + r for b, r in zip(base, self.releasing, strict=True)]
        limit = list(cap.slack) if cap is not None else None
        for victim in victims:
            late = limit is not None and cap is not None and victim.end_bound > cap.start
            for node, indices in victim.allocation.parts:
                i = self.pool.index[node]
                usable[i] += len(indices)
                if late and limit is not None:
                    limit[i] += len(indices)
        if limit is not None:
            usable = [min(u, c) for u, c in zip(usable, limit, strict=True)]
        if sum(usable) < job.gpus:
            return None
        dom = self.pool.topo.domain_sums(usable)
        return place(self.pool.topo, usable, dom, job.gpus, job.gpus_per_node, job.one_domain)

    def _claims(self, parts: Parts, base: list[int]) -> dict[int, int]:
        return {i: min(self.releasing[i], max(0, n - base[i])) for i, n in parts}

    def commit(self, plan: Plan, on_victim: Callable[[RunningJob], None]) -> None:
        """Record the plan: claimed GPUs are spoken for, victims stop counting as borrowed."""
        for i, n in plan.claimed.items():
            self.releasing[i] -= n
        self.by_cohort.clear()
        for victim in plan.victims:
            self.chosen.add(victim.job.id)
            self.kept_by[(victim.job.project, victim.job.gpu_type)] += victim.job.gpus
            on_victim(victim)
