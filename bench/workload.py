"""The benchmark cluster and queue of issue 2, generated from a seed.

1,250 nodes x 8 GPUs (10,000 GPUs) of 4 GPU types in 150 NVLink domains and 38 racks;
8,000 running jobs filling the cluster; 50,000 pending jobs from 200 projects in 4 cohorts,
with quotas and budgets from awards. Shapes follow the published Philly mix: most gangs are
1 GPU, a tail of multi-node gangs of 16-64 GPUs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from kizuna.kernel.ids import CohortId, GpuType, JobId, NodeId, ProjectId
from kizuna.kernel.units import HOUR, GpuSeconds, Instant, Seconds
from kizuna.scheduling.model import (
    HIGH,
    LOW,
    NORMAL,
    Allocation,
    Job,
    Node,
    Project,
    Quota,
    RunningJob,
    Snapshot,
    UsageRecord,
)

TYPES = (("H100", 500), ("H200", 250), ("A100", 350), ("L40S", 150))
NOW = Instant(1_800_000_000.0)


@dataclass(frozen=True)
class Scale:
    nodes: int = 1250
    domains: int = 150
    running: int = 8000
    pending: int = 50_000
    projects: int = 200
    cohorts: int = 4


def cluster(scale: Scale) -> tuple[Node, ...]:
    """Nodes of 4 types, spread over `scale.domains` NVLink domains, 4 domains to a rack."""
    factor = scale.nodes / sum(n for _, n in TYPES)
    counts = [(GpuType(t), round(n * factor)) for t, n in TYPES]
    per_domain = scale.nodes / scale.domains
    out: list[Node] = []
    for t, count in counts:
        for k in range(count):
            domain = int(len(out) / per_domain)
            node = Node(
                NodeId(f"{t.lower()}-{k:04d}"), t, 8, f"nvl{domain:03d}", f"rack{domain // 4:02d}"
            )
            out.append(node)
    return tuple(out)


def _size(rng: random.Random) -> tuple[int, int | None]:
    roll = rng.random()
    if roll < 0.55:
        return 1, None
    if roll < 0.75:
        return 2, None
    if roll < 0.87:
        return 4, None
    if roll < 0.95:
        return 8, None
    return rng.choice((16, 32, 64)), 8


def _job(
    rng: random.Random, n: int, projects: list[Project], gpu_type: GpuType, submit: float
) -> Job:
    """A job of a project drawn in proportion to its award (its shares)."""
    gpus, per_node = _size(rng)
    return Job(
        JobId(f"j{n:06d}"),
        rng.choices(projects, [p.shares for p in projects])[0].id,
        gpu_type,
        gpus,
        Seconds(rng.choice((1, 2, 4, 8, 12, 24, 48)) * HOUR),
        Instant(submit),
        gpus_per_node=per_node,
        priority=rng.choices((LOW, NORMAL, HIGH), (2, 7, 1))[0],
        grace=Seconds(rng.choice((0.0, 60.0, 300.0))),
        min_runtime=Seconds(rng.choice((0.0, 600.0))),
    )


def projects(scale: Scale, nodes: tuple[Node, ...], rng: random.Random) -> list[Project]:
    capacity: dict[GpuType, int] = {}
    for node in nodes:
        capacity[node.gpu_type] = capacity.get(node.gpu_type, 0) + node.gpus
    weights = [rng.paretovariate(1.5) for _ in range(scale.projects)]
    total = sum(weights)
    out = []
    for p, w in enumerate(weights):
        quotas = {t: Quota(int(c * w / total), None) for t, c in capacity.items()}
        budgets = {
            t: GpuSeconds(q.nominal * 24 * 90 * HOUR + 1000 * HOUR) for t, q in quotas.items()
        }
        usage = UsageRecord(rng.uniform(0, 1e7), NOW)
        cohort = CohortId(f"cohort-{p % scale.cohorts}")
        out.append(Project(ProjectId(f"proj-{p:03d}"), cohort, quotas, w, usage, budgets))
    return out


def snapshot(scale: Scale = Scale(), seed: int = 7) -> Snapshot:
    """The benchmark snapshot: a full cluster and a long queue."""
    rng = random.Random(seed)
    nodes = cluster(scale)
    projs = projects(scale, nodes, rng)
    running = _fill(scale, nodes, projs, rng)
    types = [t for t, _ in ((n.gpu_type, 0) for n in nodes)]
    pending = tuple(
        _job(rng, scale.running + k, projs, rng.choice(types), NOW - rng.uniform(0, 72 * HOUR))
        for k in range(scale.pending)
    )
    return Snapshot(nodes, running, pending, {p.id: p for p in projs})


def _fill(
    scale: Scale, nodes: tuple[Node, ...], projs: list[Project], rng: random.Random
) -> tuple[RunningJob, ...]:
    """Pack `scale.running` jobs onto the nodes until the cluster is full, as a cluster that
    Kizuna has been running looks: projects hold about their nominal quota, a few borrow."""
    free = [(node, list(range(node.gpus))) for node in nodes]
    rng.shuffle(free)
    held: dict[tuple[str, str], int] = {}
    out: list[RunningJob] = []
    cursor = 0
    while len(out) < scale.running and cursor < len(free):
        node, gpus = free[cursor]
        left_jobs = scale.running - len(out)
        left_gpus = sum(len(g) for _, g in free[cursor:])
        want = max(1, min(len(gpus), left_gpus // max(left_jobs, 1)))
        job = _job(rng, len(out), projs, node.gpu_type, NOW - 80 * HOUR)
        owner = _owner(rng, projs, node.gpu_type, want, held)
        job = Job(
            job.id,
            owner.id,
            job.gpu_type,
            want,
            job.walltime,
            job.submit_time,
            None,
            job.priority,
            job.preemptible,
            job.grace,
            job.min_runtime,
        )
        held[(owner.id, node.gpu_type)] = held.get((owner.id, node.gpu_type), 0) + want
        taken, free[cursor] = gpus[:want], (node, gpus[want:])
        start = NOW - rng.uniform(0, job.walltime * 0.9)
        out.append(RunningJob(job, Instant(start), Allocation(((node.id, tuple(taken)),))))
        if not free[cursor][1]:
            cursor += 1
    return tuple(out)


def _owner(
    rng: random.Random,
    projs: list[Project],
    t: GpuType,
    gpus: int,
    held: dict[tuple[str, str], int],
) -> Project:
    """A project with room left in its nominal quota, by award size; one in ten may borrow."""
    for _ in range(20):
        p = rng.choices(projs, [q.shares for q in projs])[0]
        if rng.random() < 0.1 or held.get((p.id, t), 0) + gpus <= p.quotas[t].nominal:
            return p
    return p
