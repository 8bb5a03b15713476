"""Builders for tests, benchmarks and demos: short ways to write clusters, jobs and snapshots.

Public on purpose (as `structlog.testing`): the simulator's and the service's tests use them too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from kizuna.kernel.ids import CohortId, GpuType, JobId, NodeId, ProjectId
from kizuna.kernel.units import GpuSeconds, Instant, Seconds
from kizuna.scheduling.decisions import CycleResult
from kizuna.scheduling.model import (
    NORMAL,
    Allocation,
    Job,
    Node,
    NodeState,
    PriorityClass,
    Project,
    Quota,
    RunningJob,
    Snapshot,
    UsageRecord,
)


def nodes(
    count: int,
    gpu_type: str = "H100",
    gpus: int = 8,
    per_domain: int = 4,
    per_rack: int = 2,
    prefix: str = "",
    state: NodeState = NodeState.UP,
) -> tuple[Node, ...]:
    """`count` nodes named `<prefix or type>-<n>`, `per_domain` to an NVLink domain,
    `per_rack` domains to a rack."""
    name = prefix or gpu_type.lower()
    out = []
    for n in range(count):
        domain = n // per_domain
        out.append(
            Node(
                NodeId(f"{name}-{n:04d}"),
                GpuType(gpu_type),
                gpus,
                nvlink_domain=f"{name}-nvl{domain:03d}",
                rack=f"{name}-rack{domain // per_rack:02d}",
                state=state,
            )
        )
    return tuple(out)


def job(
    id: str,
    gpus: int = 8,
    project: str = "p1",
    gpu_type: str = "H100",
    walltime: float = 3600.0,
    submit: float = 0.0,
    per_node: int | None = None,
    priority: PriorityClass = NORMAL,
    preemptible: bool = True,
    grace: float = 0.0,
    min_runtime: float = 0.0,
    one_domain: bool = False,
    attained: float = 0.0,
) -> Job:
    return Job(
        JobId(id),
        ProjectId(project),
        GpuType(gpu_type),
        gpus,
        Seconds(walltime),
        Instant(submit),
        gpus_per_node=per_node,
        priority=priority,
        preemptible=preemptible,
        grace=Seconds(grace),
        min_runtime=Seconds(min_runtime),
        one_domain=one_domain,
        attained=GpuSeconds(attained),
    )


def running(
    j: Job, start: float, parts: Mapping[str, Iterable[int]], stopping_at: float | None = None
) -> RunningJob:
    """`j` running since `start` on the given node -> GPU indices."""
    allocation = Allocation(tuple((NodeId(n), tuple(ix)) for n, ix in parts.items()))
    stop = Instant(stopping_at) if stopping_at is not None else None
    return RunningJob(j, Instant(start), allocation, stop)


def project(
    id: str,
    quotas: Mapping[str, tuple[int, int | None]] | None = None,
    cohort: str | None = None,
    shares: float = 1.0,
    usage: float = 0.0,
    budgets: Mapping[str, float] | None = None,
) -> Project:
    """A project; `quotas` maps GPU type -> (nominal, borrowing limit), `budgets` GPU type ->
    remaining GPU-seconds."""
    return Project(
        ProjectId(id),
        CohortId(cohort) if cohort is not None else None,
        {GpuType(t): Quota(n, b) for t, (n, b) in (quotas or {}).items()},
        shares,
        UsageRecord(usage, Instant(0.0)),
        {GpuType(t): GpuSeconds(v) for t, v in budgets.items()} if budgets is not None else None,
    )


def projects(*items: Project) -> dict[ProjectId, Project]:
    return {p.id: p for p in items}


def settle(snapshot: Snapshot, result: CycleResult, now: float) -> Snapshot:
    """The snapshot after the live loop carried out `result` at `now`: admitted jobs run,
    preempted jobs are stopping within their grace. Unchanged jobs stay the same objects."""
    admitted = {a.job: a.allocation for a in result.admissions}
    stopping = {p.job: p for p in result.preemptions}
    running = [
        dataclasses.replace(
            r,
            stopping_at=Instant(now + stopping[r.job.id].grace),
            stopping_for=stopping[r.job.id].for_job,
        )
        if r.job.id in stopping
        else r
        for r in snapshot.running
    ]
    running += [
        RunningJob(j, Instant(now), admitted[j.id]) for j in snapshot.pending if j.id in admitted
    ]
    pending = tuple(j for j in snapshot.pending if j.id not in admitted)
    return dataclasses.replace(snapshot, running=tuple(running), pending=pending)


def end(snapshot: Snapshot, job: JobId) -> Snapshot:
    """The snapshot once running job `job` has ended."""
    running = tuple(r for r in snapshot.running if r.job.id != job)
    return dataclasses.replace(snapshot, running=running)
