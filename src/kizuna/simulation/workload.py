"""A seeded synthetic workload: a cluster, projects with quotas from awards, and a job stream.

Until real traces are read (Philly, Helios, PAI), the simulator runs on this generator. Its
shape follows what those traces report: Poisson arrivals, mostly small gangs with a tail of
multi-node ones, heavy-tailed (lognormal) runtimes, and walltimes users overestimate.

Only `random.Random(seed)` is used, and draws happen in a fixed order, so one seed always
gives the same workload on every machine.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kizuna.kernel.errors import InvalidRequest
from kizuna.kernel.ids import CohortId, GpuType, JobId, ProjectId
from kizuna.kernel.units import HOUR, MINUTE, Instant, Seconds
from kizuna.scheduling.model import Job, Node, Project, Quota
from kizuna.scheduling.testing import nodes as build_nodes
from kizuna.simulation.awards import split
from kizuna.simulation.cluster import NodeChange

GPU_TYPES: tuple[GpuType, ...] = (GpuType("H100"), GpuType("A100"))
"""Node groups, in order: the first gets the odd node when the count does not split evenly."""

SMALL_GANGS: tuple[tuple[int, int], ...] = ((1, 4), (2, 3), (4, 3), (8, 3))
"""(GPUs, weight) of single-node jobs; capped at the GPUs of one node."""
LARGE_GANGS: tuple[tuple[int, int], ...] = ((2, 3), (4, 2), (8, 1))
"""(nodes, weight) of multi-node jobs: whole nodes, 16 to 64 GPUs on 8-GPU nodes."""

COHORT = CohortId("program")


@dataclass(frozen=True)
class WorkloadSpec:
    """The knobs of the generator; the defaults make a busy, but not hopeless, cluster."""

    jobs: int = 300
    nodes: int = 16
    projects: int = 8
    load: float = 1.0
    """Offered GPU work per unit of time over cluster capacity (approximate: before clamping
    gangs to the cluster and capping durations)."""
    gpus_per_node: int = 8
    nodes_per_domain: int = 4
    domains_per_rack: int = 2
    large_fraction: float = 0.08
    """Share of multi-node jobs (drawn from `LARGE_GANGS`)."""
    median_duration: Seconds = HOUR
    duration_sigma: float = 1.4
    """Sigma of the lognormal runtime: 1.4 puts the 99th percentile near 26 x the median."""
    min_duration: Seconds = MINUTE
    max_duration: Seconds = Seconds(48 * HOUR)
    walltime_factor: tuple[float, float] = (1.2, 3.0)
    """Walltime is the true runtime times a factor drawn from this range (users overestimate)."""
    grace: Seconds = Seconds(2 * MINUTE)
    min_runtime: Seconds = Seconds(10 * MINUTE)
    median_award: float = 50_000.0
    """GPU-hours of the median award; award sizes are lognormal around it."""


@dataclass(frozen=True, slots=True)
class TraceJob:
    """A job as a trace knows it: the request the scheduler sees and how long it really runs."""

    job: Job
    duration: Seconds
    """True runtime on its GPUs; the scheduler only ever sees `job.walltime`."""


@dataclass(frozen=True)
class Workload:
    """Everything a replay needs: the cluster, the projects and the jobs in submit order."""

    nodes: tuple[Node, ...]
    projects: Mapping[ProjectId, Project]
    jobs: tuple[TraceJob, ...]
    awards: Mapping[ProjectId, float]
    """Award size per project in GPU-hours, from which quotas and shares were derived."""
    changes: tuple[NodeChange, ...] = ()
    """Nodes added, drained, back up or removed during the replay, in time order."""
    refused: tuple[TraceJob, ...] = ()
    """Jobs left out because no cluster state could ever run them (W4)."""

    def gpus(self) -> dict[GpuType, int]:
        """GPUs per type, in node order."""
        return capacity(self.nodes)


def capacity(nodes: Sequence[Node]) -> dict[GpuType, int]:
    """GPUs per type, in the order the types first appear."""
    out: dict[GpuType, int] = {}
    for node in nodes:
        out[node.gpu_type] = out.get(node.gpu_type, 0) + node.gpus
    return out


def generate(spec: WorkloadSpec, seed: int) -> Workload:
    """The workload `spec` describes, drawn from `random.Random(seed)`."""
    problems = _problems(spec)
    if problems:
        raise InvalidRequest(problems)
    rng = random.Random(seed)
    nodes = _cluster(spec)
    gpus = capacity(nodes)
    awards = _awards(rng, spec)
    projects = _projects(awards, gpus)
    jobs = _jobs(rng, spec, gpus, sorted(projects))
    return Workload(nodes, projects, jobs, awards)


def _problems(spec: WorkloadSpec) -> list[str]:
    checks = [
        (spec.jobs >= 0, f"the number of jobs cannot be negative (got {spec.jobs})"),
        (spec.nodes >= 1, f"the cluster needs at least one node (got {spec.nodes})"),
        (spec.projects >= 1, f"the workload needs at least one project (got {spec.projects})"),
        (spec.load > 0, f"the offered load must be positive (got {spec.load:g})"),
        (spec.gpus_per_node >= 1, "nodes need at least one GPU"),
        (0 < spec.min_duration <= spec.max_duration, "durations need 0 < min <= max"),
        (
            1.0 <= spec.walltime_factor[0] <= spec.walltime_factor[1],
            "walltime factors need 1 <= low <= high, so a job always ends within its walltime",
        ),
    ]
    return [message for ok, message in checks if not ok]


# -- the cluster and the projects ----------------------------------------------------------


def _cluster(spec: WorkloadSpec) -> tuple[Node, ...]:
    """Node groups of each GPU type, `nodes_per_domain` nodes to an NVLink domain."""
    out: list[Node] = []
    for k, gpu_type in enumerate(GPU_TYPES):
        count = (spec.nodes + len(GPU_TYPES) - 1 - k) // len(GPU_TYPES)
        if count:
            out.extend(
                build_nodes(
                    count,
                    gpu_type,
                    spec.gpus_per_node,
                    per_domain=spec.nodes_per_domain,
                    per_rack=spec.domains_per_rack,
                )
            )
    return tuple(out)


def _awards(rng: random.Random, spec: WorkloadSpec) -> dict[ProjectId, float]:
    """Award sizes in GPU-hours, rounded to hundreds: a few large awards, many small ones."""
    mu = math.log(spec.median_award)
    return {
        ProjectId(f"p{n + 1:02d}"): max(100.0, round(rng.lognormvariate(mu, 0.8), -2))
        for n in range(spec.projects)
    }


def _projects(
    awards: Mapping[ProjectId, float], gpus: Mapping[GpuType, int]
) -> dict[ProjectId, Project]:
    """One cohort; nominal quota proportional to award size, unlimited borrowing, shares =
    award. Budgets stay unlimited so that every generated job can finish."""
    nominal = {t: split(count, awards) for t, count in gpus.items()}
    return {
        pid: Project(
            pid,
            COHORT,
            {t: Quota(nominal[t][pid], None) for t in gpus},
            shares=award,
        )
        for pid, award in awards.items()
    }


# -- the jobs --------------------------------------------------------------------------------


def _jobs(
    rng: random.Random,
    spec: WorkloadSpec,
    gpus_of: Mapping[GpuType, int],
    projects: Sequence[ProjectId],
) -> tuple[TraceJob, ...]:
    types = list(gpus_of)
    weights = [gpus_of[t] for t in types]
    rate = _arrival_rate(spec, sum(weights))
    type_nodes = {t: gpus_of[t] // spec.gpus_per_node for t in types}
    now = 0.0
    out = []
    for n in range(spec.jobs):
        now += rng.expovariate(rate)
        project = rng.choice(projects)
        gpu_type = rng.choices(types, weights)[0]
        gpus, per_node = _gang(rng, spec, type_nodes[gpu_type])
        duration = _duration(rng, spec)
        walltime = math.ceil(duration * rng.uniform(*spec.walltime_factor) / MINUTE) * MINUTE
        job = Job(
            JobId(f"j{n + 1:04d}"),
            project,
            gpu_type,
            gpus,
            Seconds(walltime),
            Instant(round(now, 3)),
            gpus_per_node=per_node,
            grace=spec.grace,
            min_runtime=spec.min_runtime,
        )
        out.append(TraceJob(job, Seconds(duration)))
    return tuple(out)


def _arrival_rate(spec: WorkloadSpec, gpus: int) -> float:
    """Jobs per second such that expected GPU work arrives at `load` x capacity."""
    small = _mean(SMALL_GANGS)
    large = _mean(LARGE_GANGS) * spec.gpus_per_node
    mean_gpus = (1 - spec.large_fraction) * small + spec.large_fraction * large
    mean_duration = spec.median_duration * math.exp(spec.duration_sigma**2 / 2)
    return spec.load * gpus / (mean_gpus * mean_duration)


def _mean(table: Sequence[tuple[int, int]]) -> float:
    return sum(g * w for g, w in table) / sum(w for _, w in table)


def _gang(rng: random.Random, spec: WorkloadSpec, type_nodes: int) -> tuple[int, int | None]:
    """GPUs and GPUs per node of one gang: a small job fits one node; a large one takes whole
    nodes, never more than its GPU type has."""
    if rng.random() < spec.large_fraction:
        nodes = _draw(rng, LARGE_GANGS)
        if type_nodes >= 2:
            return min(nodes, type_nodes) * spec.gpus_per_node, spec.gpus_per_node
        return spec.gpus_per_node, None
    return min(_draw(rng, SMALL_GANGS), spec.gpus_per_node), None


def _draw(rng: random.Random, table: Sequence[tuple[int, int]]) -> int:
    return rng.choices([v for v, _ in table], [w for _, w in table])[0]


def _duration(rng: random.Random, spec: WorkloadSpec) -> float:
    raw = rng.lognormvariate(math.log(spec.median_duration), spec.duration_sigma)
    return round(min(max(raw, spec.min_duration), spec.max_duration), 1)
