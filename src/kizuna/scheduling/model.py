"""What the scheduler sees: nodes, gangs, running jobs, projects with quotas, reservations.

Every value is frozen; a `Snapshot` is one consistent picture of the cluster at an instant.
The live service builds it from the store, the simulator from its own state (ADR 0002).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from kizuna.kernel.ids import CohortId, GpuType, JobId, NodeId, ProjectId, ReservationId
from kizuna.kernel.units import GpuSeconds, Instant, Seconds


class NodeState(StrEnum):
    UP = "up"
    DRAINING = "draining"
    """Finishes what runs on it, takes nothing new (Slurm's DRAIN)."""
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class Node:
    """A server with `gpus` GPUs of one type, placed in an NVLink domain and a rack."""

    id: NodeId
    gpu_type: GpuType
    gpus: int
    nvlink_domain: str = ""
    """NVLink domain (or network block) label; empty means the node is a domain of its own."""
    rack: str = ""
    state: NodeState = NodeState.UP

    @property
    def domain(self) -> str:
        return self.nvlink_domain or f"node:{self.id}"


@dataclass(frozen=True, slots=True, order=True)
class PriorityClass:
    """A named priority level, as Kueue's WorkloadPriorityClass; a higher value runs first."""

    value: int
    name: str


LOW = PriorityClass(0, "low")
NORMAL = PriorityClass(100, "normal")
HIGH = PriorityClass(1000, "high")
PRIORITY_CLASSES: Mapping[str, PriorityClass] = {c.name: c for c in (LOW, NORMAL, HIGH)}


Shape = tuple[int, bool]
"""A gang's shape as a key: (GPUs per node or 0, one NVLink domain). What is remembered per
shape within a cycle (refused sizes, holes, walk bounds) is kept under it."""


@dataclass(frozen=True, slots=True)
class Job:
    """A gang: `gpus` GPUs of one type that start together or not at all.

    With `gpus_per_node` the gang is `gpus // gpus_per_node` nodes of exactly that many GPUs
    each (sbatch's `--nodes` x `--gpus-per-node`); without it the GPUs may be split across
    nodes in any way (`--gpus`).
    """

    id: JobId
    project: ProjectId
    gpu_type: GpuType
    gpus: int
    walltime: Seconds
    submit_time: Instant
    gpus_per_node: int | None = None
    priority: PriorityClass = NORMAL
    preemptible: bool = True
    grace: Seconds = Seconds(0.0)
    """Checkpoint grace period: time between the checkpoint signal and the kill."""
    min_runtime: Seconds = Seconds(0.0)
    """The job may not be preempted before it has run this long."""
    one_domain: bool = False
    """Topology requirement: the whole gang inside one NVLink domain."""
    attained: GpuSeconds = GpuSeconds(0.0)
    """GPU-seconds received in earlier runs (before a preemption); used by LAS."""

    @property
    def nodes(self) -> int | None:
        """The number of nodes when the gang's shape is fixed, else None."""
        if self.gpus_per_node is None or self.gpus_per_node <= 0:
            return None
        return self.gpus // self.gpus_per_node


@dataclass(frozen=True, slots=True)
class Allocation:
    """Where a gang runs: for each node, the indices of the GPUs it holds."""

    parts: tuple[tuple[NodeId, tuple[int, ...]], ...]

    @property
    def gpus(self) -> int:
        return sum(len(indices) for _, indices in self.parts)

    @property
    def nodes(self) -> tuple[NodeId, ...]:
        return tuple(node for node, _ in self.parts)


@dataclass(frozen=True, slots=True)
class RunningJob:
    """A job holding GPUs since `start`."""

    job: Job
    start: Instant
    allocation: Allocation
    stopping_at: Instant | None = None
    """Set once a preemption was ordered: when the job will have released its GPUs."""
    stopping_for: JobId | None = None
    """The job it was preempted for: while that job waits, these GPUs are kept for it."""

    @property
    def end_bound(self) -> Instant:
        """The latest instant the job can still hold its GPUs (walltime, or preemption)."""
        if self.stopping_at is not None:
            return self.stopping_at
        return Instant(self.start + self.job.walltime)


@dataclass(frozen=True, slots=True)
class Quota:
    """A project's quota for one GPU type, derived from its awards (Kueue's ClusterQueue)."""

    nominal: int
    """GPUs guaranteed to the project; reclaimed from borrowers when it needs them."""
    borrowing_limit: int | None = None
    """GPUs it may borrow beyond nominal from idle quota of its cohort; None: no limit."""


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """Fair-share usage: GPU-seconds decayed to `as_of` (see `fair_share.decayed`)."""

    gpu_seconds: float = 0.0
    as_of: Instant = Instant(0.0)


@dataclass(frozen=True)
class Project:
    """A tenant of the cluster, with what its awards grant."""

    id: ProjectId
    cohort: CohortId | None = None
    quotas: Mapping[GpuType, Quota] = field(default_factory=dict)
    shares: float = 1.0
    """Fair-share weight, derived from award size."""
    usage: UsageRecord = UsageRecord()
    budgets: Mapping[GpuType, GpuSeconds] | None = None
    """Remaining award GPU-seconds per GPU type; None: the project is not budget-limited."""

    def with_usage(self, usage: UsageRecord) -> Project:
        """This project with another usage record: `dataclasses.replace(self, usage=usage)`,
        made directly (a replay makes hundreds of thousands; test_fair_share checks that
        it names every field)."""
        return Project(self.id, self.cohort, self.quotas, self.shares, usage, self.budgets)


@dataclass(frozen=True, slots=True)
class Reservation:
    """Nodes held for one project during [start, end) — a "hero" run's window.

    Other projects' jobs may use these nodes only if they end (by walltime) before `start`.
    """

    id: ReservationId
    project: ProjectId
    nodes: frozenset[NodeId]
    start: Instant
    end: Instant


@dataclass(frozen=True)
class Snapshot:
    """One consistent picture of the cluster, the queue and the quotas."""

    nodes: tuple[Node, ...]
    running: tuple[RunningJob, ...] = ()
    pending: Sequence[Job] = ()
    """The jobs waiting, in the order they came; never changed once given to a cycle."""
    projects: Mapping[ProjectId, Project] = field(default_factory=dict)
    reservations: tuple[Reservation, ...] = ()
