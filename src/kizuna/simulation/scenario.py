"""A scenario: a trace, a cluster and awards, turned into the jobs and projects a replay runs.

How trace rows become jobs:
 W1 The row's tenant maps to a project by the awards spec (awards.py, A1-A2).
 W2 A row without a GPU type asks for the cluster's default type (its first node group).
 W3 A gang larger than one node of its type, and a multiple of the node size, takes whole
    nodes (`--nodes` x `--gpus-per-node`); any other gang may split across nodes freely.
 W4 A row asking for more GPUs (or a type) than the cluster will ever have is refused: it
    is listed in `Workload.refused`, never replayed, and reports say how many.
 W5 A row without a walltime gets (duration + restart overhead) x `walltime_factor`,
    rounded up to whole minutes: 1.0 models users who know their runtimes (as Gavel and
    Tiresias assume), larger factors the overestimates real users make.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kizuna.kernel.errors import InvalidRequest
from kizuna.kernel.ids import GpuType, JobId, ProjectId
from kizuna.kernel.units import HOUR, MINUTE, Instant, Seconds
from kizuna.scheduling.model import PRIORITY_CLASSES, Job
from kizuna.simulation.awards import AwardsSpec
from kizuna.simulation.cluster import ClusterSpec, NodeChange
from kizuna.simulation.workload import TraceJob, Workload
from kizuna.traces.model import TraceRecord


@dataclass(frozen=True)
class JobDefaults:
    """What trace rows do not say about jobs."""

    walltime_factor: float = 1.0
    """W5; at least 1, so a job always fits its walltime."""
    restart_overhead: Seconds = Seconds(60.0)
    """Seconds a restarted job spends reloading its checkpoint before doing new work."""
    grace: Seconds = Seconds(60.0)
    """Checkpoint grace period between the preemption signal and the kill."""
    min_runtime: Seconds = Seconds(10 * MINUTE)
    """A job is not preempted before it ran this long."""

    def problems(self) -> list[str]:
        checks = [
            (self.walltime_factor >= 1.0, "the walltime factor must be at least 1"),
            (self.restart_overhead >= 0, "the restart overhead cannot be negative"),
            (self.grace >= 0, "the grace period cannot be negative"),
            (self.min_runtime >= 0, "the minimum runtime cannot be negative"),
        ]
        return [message for ok, message in checks if not ok]


def demand(records: Iterable[TraceRecord], cluster: ClusterSpec) -> dict[str, dict[str, float]]:
    """Tenant -> GPU type -> GPU-hours its rows ask for (for awards from demand, A2)."""
    out: dict[str, dict[str, float]] = {}
    default = cluster.default_gpu_type
    for r in records:
        per_type = out.setdefault(r.project, {})
        t = r.gpu_type or default
        per_type[t] = per_type.get(t, 0.0) + r.gpus * r.duration / HOUR
    return out


def build(
    records: Iterable[TraceRecord],
    cluster: ClusterSpec,
    awards: AwardsSpec | None = None,
    defaults: JobDefaults = JobDefaults(),
) -> Workload:
    """The workload of a scenario (W1-W5). Without `awards`, awards follow demand (A2)."""
    problems = defaults.problems()
    if problems:
        raise InvalidRequest(problems)
    rows = list(records)
    if awards is None:
        awards = AwardsSpec.from_demand(demand(rows, cluster), cluster.gpus())
    project_of = awards.project_of(r.project for r in rows)
    projects = awards.projects(r.project for r in rows)
    changes = cluster.node_changes()
    largest = _largest(cluster, changes)
    node_size = {g.gpu_type: g.gpus_per_node for g in reversed(cluster.groups)}
    jobs: list[TraceJob] = []
    refused: list[TraceJob] = []
    seen: set[str] = set()
    for r in rows:
        if r.id in seen:
            raise InvalidRequest([f"job id {r.id!r} appears twice in the trace"])
        seen.add(r.id)
        gpu_type = GpuType(r.gpu_type or cluster.default_gpu_type)
        job = _job(r, gpu_type, ProjectId(project_of[r.project]), node_size, defaults)
        (jobs if r.gpus <= largest.get(gpu_type, 0) else refused).append(
            TraceJob(job, Seconds(float(r.duration)))
        )
    sizes = {pid: sum((p.budgets or {}).values()) / HOUR for pid, p in projects.items()}
    return Workload(cluster.nodes(), projects, tuple(jobs), sizes, changes, tuple(refused))


def _largest(cluster: ClusterSpec, changes: Iterable[NodeChange]) -> dict[GpuType, int]:
    """The most GPUs of each type the cluster ever has in service at once (W4)."""
    now = {t: n for t, n in cluster.gpus().items()}
    most = dict(now)
    present = {n.id: n for n in cluster.nodes()}
    for change in changes:
        old = present.pop(change.id, None)
        if old is not None:
            now[old.gpu_type] -= old.gpus
        if change.node is not None:
            present[change.id] = change.node
            now[change.node.gpu_type] = now.get(change.node.gpu_type, 0) + change.node.gpus
            most[change.node.gpu_type] = max(
                most.get(change.node.gpu_type, 0), now[change.node.gpu_type]
            )
    return most


def _job(
    r: TraceRecord,
    gpu_type: GpuType,
    project: ProjectId,
    node_size: Mapping[GpuType, int],
    defaults: JobDefaults,
) -> Job:
    size = node_size.get(gpu_type, 0)
    per_node = size if size and r.gpus > size and r.gpus % size == 0 else None
    if r.walltime is not None:
        walltime = r.walltime
    else:
        wanted = (r.duration + defaults.restart_overhead) * defaults.walltime_factor
        walltime = max(MINUTE, math.ceil(wanted / MINUTE) * MINUTE)
    priority = PRIORITY_CLASSES.get(r.priority)
    if priority is None:
        raise InvalidRequest([f"job {r.id}: unknown priority class {r.priority!r}"])
    return Job(
        JobId(r.id),
        project,
        gpu_type,
        r.gpus,
        Seconds(walltime),
        Instant(float(r.submit)),
        gpus_per_node=per_node,
        priority=priority,
        grace=defaults.grace,
        min_runtime=defaults.min_runtime,
    )
