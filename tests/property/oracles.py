"""Independent checks for the properties: written from the rules, not from the core's code.

`fits` decides by counting whether a gang can be placed at all (placement is complete for the
shapes Kizuna offers: a total count, N nodes x G, either within one NVLink domain or not).
`Ledger` replays a cycle's decisions in the order the cycle considered the jobs, so quota
rules can be checked at the moment each decision was taken. `simulate` runs the core forward
in time, ending every job at its end bound, to see whether a promise is kept.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from strategies import Case

from kizuna.kernel.ids import CohortId, GpuType, JobId, NodeId, ProjectId
from kizuna.kernel.units import Instant
from kizuna.scheduling import (
    Allocation,
    CycleResult,
    Job,
    Node,
    NodeState,
    Preemption,
    Project,
    Quota,
    Reason,
    ReasonCode,
    Reservation,
    RunningJob,
    Snapshot,
    run_cycle,
)

# -- capacity -----------------------------------------------------------------------------------


def end_of(r: RunningJob) -> Instant:
    """When a running job gives its GPUs back at the latest: walltime, or an earlier stop."""
    ends = Instant(r.start + r.job.walltime)
    return ends if r.stopping_at is None else Instant(min(ends, r.stopping_at))


def free_gpus(nodes: Iterable[Node], held: Iterable[Allocation]) -> dict[NodeId, int]:
    """GPUs free per node: up nodes less what the allocations hold; others offer none."""
    free = {n.id: n.gpus if n.state is NodeState.UP else 0 for n in nodes}
    for allocation in held:
        for node, indices in allocation.parts:
            free[node] = max(0, free[node] - len(indices))
    return free


def excluded(job: Job, reservations: Iterable[Reservation], start: float) -> set[NodeId]:
    """Nodes `job`, started at `start`, may not use: other projects' reservations it overlaps."""
    end = start + job.walltime
    out: set[NodeId] = set()
    for r in reservations:
        if r.project != job.project and end > r.start and start < r.end:
            out |= r.nodes
    return out


def fits(job: Job, nodes: Sequence[Node], free: Mapping[NodeId, int]) -> bool:
    """Whether the gang can be placed on the free GPUs, by counting."""
    own = [n for n in nodes if n.gpu_type == job.gpu_type]
    groups: dict[str, list[Node]] = defaultdict(list)
    for n in own:
        groups[n.domain if job.one_domain else ""].append(n)
    return any(_fits_in(job, group, free) for group in groups.values())


def _fits_in(job: Job, group: Sequence[Node], free: Mapping[NodeId, int]) -> bool:
    if job.gpus_per_node:
        wide = sum(1 for n in group if free.get(n.id, 0) >= job.gpus_per_node)
        return wide >= (job.nodes or 0)
    return sum(free.get(n.id, 0) for n in group) >= job.gpus


# -- quotas -------------------------------------------------------------------------------------


@dataclass
class Ledger:
    """GPUs in use per (project, type) and per (cohort, type), as decisions are replayed."""

    projects: Mapping[ProjectId, Project]
    usage: defaultdict[tuple[ProjectId, GpuType], int] = field(
        default_factory=lambda: defaultdict(int)
    )
    cohorts: defaultdict[tuple[CohortId, GpuType], int] = field(
        default_factory=lambda: defaultdict(int)
    )

    @classmethod
    def of(cls, projects: Mapping[ProjectId, Project], jobs: Iterable[Job]) -> Ledger:
        ledger = cls(projects)
        for j in jobs:
            ledger.add(j, j.gpus)
        return ledger

    def add(self, job: Job, gpus: int) -> None:
        self.usage[(job.project, job.gpu_type)] += gpus
        cohort = self.cohort(job.project)
        if cohort is not None:
            self.cohorts[(cohort, job.gpu_type)] += gpus

    def cohort(self, pid: ProjectId) -> CohortId | None:
        p = self.projects.get(pid)
        return p.cohort if p is not None else None

    def quota(self, pid: ProjectId, gpu_type: GpuType) -> Quota:
        p = self.projects.get(pid)
        return p.quotas.get(gpu_type, Quota(0, 0)) if p is not None else Quota(0, 0)

    def cohort_nominal(self, cohort: CohortId, gpu_type: GpuType) -> int:
        return sum(
            p.quotas[gpu_type].nominal
            for p in self.projects.values()
            if p.cohort == cohort and gpu_type in p.quotas
        )


# -- forward simulation ---------------------------------------------------------------------------


def apply(snapshot: Snapshot, result: CycleResult, now: Instant) -> Snapshot:
    """The snapshot after a cycle's decisions took effect at `now`: admitted jobs run,
    preempted jobs stop after their grace period (or at walltime, if sooner), their GPUs
    kept for the job they were preempted for (R6)."""
    started = {a.job: a.allocation for a in result.admissions}
    stops = {p.job: p for p in result.preemptions}
    still = [
        _stopping(r, stops[r.job.id], now) if r.job.id in stops else r for r in snapshot.running
    ]
    fresh = [RunningJob(j, now, started[j.id]) for j in snapshot.pending if j.id in started]
    pending = tuple(j for j in snapshot.pending if j.id not in started)
    return replace(snapshot, running=(*still, *fresh), pending=pending)


def _stopping(r: RunningJob, p: Preemption, now: Instant) -> RunningJob:
    stop = Instant(min(now + p.grace, end_of(r)))
    return replace(r, stopping_at=stop, stopping_for=p.for_job)


def advance(snapshot: Snapshot, now: Instant, later: Instant) -> Snapshot:
    """The snapshot at `later`: jobs past their end are gone, budgets charged for the GPUs
    the others held meanwhile."""
    spent: defaultdict[tuple[ProjectId, GpuType], float] = defaultdict(float)
    for r in snapshot.running:
        spent[(r.job.project, r.job.gpu_type)] += r.job.gpus * (min(end_of(r), later) - now)
    return replace(
        snapshot,
        running=tuple(r for r in snapshot.running if end_of(r) > later),
        projects={pid: _charged(p, spent) for pid, p in snapshot.projects.items()},
    )


def _charged(p: Project, spent: Mapping[tuple[ProjectId, GpuType], float]) -> Project:
    if p.budgets is None:
        return p
    left = {t: v - spent.get((p.id, t), 0.0) for t, v in p.budgets.items()}
    return replace(p, budgets=left)  # type: ignore[arg-type]


def next_event(snapshot: Snapshot, now: Instant) -> Instant | None:
    """The next instant anything changes: a job ends (perhaps right now: a job stopping at
    `now` still holds its GPUs in the snapshot), a reservation opens or closes."""
    times = [end_of(r) for r in snapshot.running if end_of(r) >= now]
    times += [t for r in snapshot.reservations for t in (r.start, r.end) if t > now]
    return Instant(min(times)) if times else None


@dataclass(frozen=True)
class Run:
    """How a simulated job fared: when it started, or why it still waited, or whether a job
    ranked below it when the promise was made came to rank above it and took GPUs first."""

    started: Instant | None = None
    waiting: Reason | None = None
    overtaken: bool = False


def simulate(
    case: Case, result: CycleResult, job_id: JobId, until: Instant, keep: Iterable[JobId]
) -> Run:
    """Run cycles forward from `case` after `result`, every job holding its GPUs until its
    end bound, with no new submissions and only the pending jobs in `keep`, until `job_id`
    is admitted or `until` has passed."""
    if job_id in result.admitted():
        return Run(case.now)
    snapshot, now = apply(case.snapshot, result, case.now), case.now
    kept = set(keep)
    snapshot = replace(snapshot, pending=tuple(j for j in snapshot.pending if j.id in kept))
    reason = result.reasons.get(job_id)
    while (later := next_event(snapshot, now)) is not None and later <= until:
        snapshot, now = advance(snapshot, now, later), later
        step = run_cycle(snapshot, case.policy, now)
        if job_id in step.admitted():
            return Run(now)
        if _overtaken(step, job_id):
            return Run(overtaken=True)
        reason = step.reasons.get(job_id)
        snapshot = apply(snapshot, step, now)
    return Run(waiting=reason)


def _overtaken(step: CycleResult, job_id: JobId) -> bool:
    """Did a job the cycle ranked above `job_id` start, start reclaiming, or take the line
    (the promise of its GPU type)?"""
    ahead = step.order[: step.order.index(job_id)]
    lined = step.admitted() | {s.job for s in step.shadows}
    return any(j in lined or _reclaiming(step, j) for j in ahead)


def _reclaiming(step: CycleResult, job_id: JobId) -> bool:
    reason = step.reasons.get(job_id)
    return reason is not None and reason.code is ReasonCode.RECLAIMING
