"""Award budgets: admit a job only if its whole walltime fits what is left (ADR 0010).

This is Slurm's `safe` limit enforcement: remaining GPU-seconds must cover the new job's
GPUs x walltime on top of what running jobs may still use until their walltime ends, so an
award is never overdrawn, whatever the jobs then do.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kizuna.kernel.ids import GpuType, ProjectId
from kizuna.kernel.units import Instant, gpu_hours
from kizuna.scheduling.decisions import Reason, ReasonCode
from kizuna.scheduling.model import Job, Project, RunningJob

BudgetUsage = tuple[GpuType, dict[tuple[ProjectId, GpuType], float]]
"""GPU-seconds committed of one type per project, as saved by `BudgetBook.saved`."""


Holding = Mapping[tuple[ProjectId, GpuType], Mapping[int, RunningJob]]
"""Running jobs per (project, type), each by `id()`, in the order they came."""


class Commitments(dict[tuple[ProjectId, GpuType], float]):
    """GPU-seconds running jobs may still use per (project, type), worked out on first use."""

    def __init__(self, holding: Holding, now: Instant) -> None:
        super().__init__()
        self.holding, self.now = holding, now

    def __missing__(self, key: tuple[ProjectId, GpuType]) -> float:
        now = self.now
        jobs = self.holding.get(key, {}).values()
        value = sum(r.job.gpus * max(0.0, r.end_bound - now) for r in jobs)
        self[key] = value
        return value


@dataclass
class BudgetBook:
    """Remaining award GPU-seconds per (project, type), and what running jobs may still use."""

    projects: Mapping[ProjectId, Project]
    committed: Commitments
    version: int = 0
    """Bumped on every commitment."""

    @classmethod
    def of(
        cls, projects: Mapping[ProjectId, Project], running: Iterable[RunningJob], now: Instant
    ) -> BudgetBook:
        holding: defaultdict[tuple[ProjectId, GpuType], dict[int, RunningJob]] = defaultdict(dict)
        for r in running:
            holding[(r.job.project, r.job.gpu_type)][id(r)] = r
        return cls(projects, Commitments(holding, now))

    def remaining(self, project: ProjectId, gpu_type: GpuType) -> float | None:
        p = self.projects.get(project)
        if p is None or p.budgets is None:
            return None
        return p.budgets.get(gpu_type, 0.0) - self.committed[(project, gpu_type)]

    def check(self, job: Job) -> Reason | None:
        left = self.remaining(job.project, job.gpu_type)
        need = job.gpus * job.walltime
        if left is None or need <= left:
            return None
        held = self.committed[(job.project, job.gpu_type)]
        return Reason(
            ReasonCode.BUDGET,
            f"award budget exhausted: job needs {gpu_hours(need):,.1f} {job.gpu_type} GPU-hours"
            f" ({job.gpus} GPUs x walltime), {gpu_hours(max(left, 0.0)):,.1f} left"
            f" after {gpu_hours(held):,.1f} held by running jobs",
        )

    def saved(self, gpu_type: GpuType) -> BudgetUsage:
        """What is committed for one GPU type now, to be put back by `restore`."""
        return gpu_type, {k: v for k, v in self.committed.items() if k[1] == gpu_type}

    def restore(self, saved: BudgetUsage) -> None:
        """Put back what `saved` saved; what was not worked out then is worked out anew."""
        self.version += 1
        gpu_type, then = saved
        for key in [k for k in self.committed if k[1] == gpu_type]:
            if key in then:
                self.committed[key] = then[key]
            else:
                del self.committed[key]

    def commit(self, job: Job) -> None:
        self.version += 1
        self.committed[(job.project, job.gpu_type)] += job.gpus * job.walltime
