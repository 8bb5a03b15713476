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

from kizuna.kernel.ids import GpuType, ProjectId
from kizuna.kernel.units import Instant
from kizuna.scheduling.capacity import Pool
from kizuna.scheduling.model import Job, RunningJob
from kizuna.scheduling.placement import Parts, place
from kizuna.scheduling.quota import QuotaBook


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
    failed: dict[tuple[ProjectId, int, bool, bool], int]
    """Smallest gang per (project, shape, capped) that found no victims: reclaimable GPUs only
    shrink during a cycle, so a larger gang of that shape fails too."""

    def plan(self, job: Job, base: list[int], cap: list[int] | None) -> Plan | None:
        """Victims that let `job` fit on `base` plus released GPUs (each node capped by `cap`)."""
        key = (job.project, job.gpus_per_node or 0, job.one_domain, cap is not None)
        if job.gpus >= self.failed.get(key, 1 << 30):
            return None
        plan = self._search(job, base, cap)
        if plan is None:
            self.failed[key] = job.gpus
        return plan

    def _search(self, job: Job, base: list[int], cap: list[int] | None) -> Plan | None:
        extra = list(self.releasing)
        parts = self._fit(job, base, extra, cap)
        if parts is not None:
            claims = self._claims(parts, base)
            return Plan((), parts, claims, claims)
        victims: list[RunningJob] = []
        for victim in self._eligible(job):
            victims.append(victim)
            for node, indices in victim.allocation.parts:
                extra[self.pool.index[node]] += len(indices)
            parts = self._fit(job, base, extra, cap)
            if parts is not None:
                return self._minimal(job, base, victims, cap)
        return None

    def _eligible(self, job: Job) -> list[RunningJob]:
        cohort = self.quota.cohort(job.project)
        if cohort is None:
            return []
        taken: defaultdict[ProjectId, int] = defaultdict(int)
        out = []
        for r in self.ordered:
            victim, project = r.job, r.job.project
            if (
                project == job.project
                or r.job.id in self.chosen
                or self.quota.cohort(project) != cohort
            ):
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
        self, job: Job, base: list[int], victims: list[RunningJob], cap: list[int] | None
    ) -> Plan:
        keep = list(victims)
        for victim in reversed(victims):  # R5
            trial = [v for v in keep if v is not victim]
            if self._fit(job, base, self._extra(trial), cap) is not None:
                keep = trial
        parts = self._fit(job, base, self._extra(keep), cap)
        assert parts is not None
        claims = self._claims(parts, base)
        freed = dict(claims)
        for victim in keep:
            for node, indices in victim.allocation.parts:
                i = self.pool.index[node]
                freed[i] = freed.get(i, 0) + len(indices)
        return Plan(tuple(keep), parts, claims, freed)

    def _extra(self, victims: Sequence[RunningJob]) -> list[int]:
        extra = list(self.releasing)
        for victim in victims:
            for node, indices in victim.allocation.parts:
                extra[self.pool.index[node]] += len(indices)
        return extra

    def _fit(
        self, job: Job, base: list[int], extra: list[int], cap: list[int] | None
    ) -> Parts | None:
        usable = [b + e for b, e in zip(base, extra, strict=True)]
        if cap is not None:
            usable = [min(u, c) for u, c in zip(usable, cap, strict=True)]
        dom = self.pool.topo.domain_sums(usable)
        if sum(dom) < job.gpus:
            return None
        return place(self.pool.topo, usable, dom, job.gpus, job.gpus_per_node, job.one_domain)

    def _claims(self, parts: Parts, base: list[int]) -> dict[int, int]:
        return {i: min(self.releasing[i], max(0, n - base[i])) for i, n in parts}

    def commit(self, plan: Plan, on_victim: Callable[[RunningJob], None]) -> None:
        """Record the plan: claimed GPUs are spoken for, victims stop counting as borrowed."""
        for i, n in plan.claimed.items():
            self.releasing[i] -= n
        for victim in plan.victims:
            self.chosen.add(victim.job.id)
            self.kept_by[(victim.job.project, victim.job.gpu_type)] += victim.job.gpus
            on_victim(victim)
