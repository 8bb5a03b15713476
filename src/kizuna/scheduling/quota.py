"""Quota arithmetic within a cycle: nominal, borrowing, cohorts (Kueue's model; ADR 0009).

Rules, cited in code as Q1..Q5:
- Q1 A job whose project stays within its nominal quota is admitted on quota grounds alone.
- Q2 Beyond nominal a job borrows: its project's usage may reach nominal + borrowing limit,
     and its cohort's usage may reach the sum of its members' nominal quotas.
- Q3 A project without a cohort cannot borrow; a project without quota for a GPU type
     cannot use that type.
- Q4 A project is "borrowing" while its usage exceeds its nominal quota; only such projects'
     jobs may be preempted to give another project its nominal quota back (reclaim).
- Q5 Jobs that fit within their project's nominal quota when a cycle starts are considered
     before jobs that would borrow (cycle.py), so reclaimed GPUs reach their owner.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from kizuna.kernel.ids import CohortId, GpuType, ProjectId
from kizuna.scheduling.decisions import Reason, ReasonCode
from kizuna.scheduling.model import Job, Project, Quota

NO_QUOTA = Quota(0, 0)


QuotaUsage = tuple[
    GpuType, dict[tuple[ProjectId, GpuType], int], dict[tuple[CohortId, GpuType], int]
]
"""A GPU type, and GPUs in use per project and per cohort, as saved by `QuotaBook.saved`."""


class Fit(Enum):
    NOMINAL = "nominal"
    BORROWING = "borrowing"


@dataclass
class QuotaBook:
    """GPUs in use per (project, type) and per (cohort, type), updated as jobs are admitted."""

    projects: Mapping[ProjectId, Project]
    usage: defaultdict[tuple[ProjectId, GpuType], int]
    cohort_usage: defaultdict[tuple[CohortId, GpuType], int]
    cohort_nominal: Mapping[tuple[CohortId, GpuType], int]
    version: int = 0
    """Bumped on every change of usage."""
    terms: dict[tuple[ProjectId, GpuType], tuple[Quota, CohortId | None]] = field(
        default_factory=dict
    )
    """Each (project, type)'s quota and cohort, looked up once per cycle."""
    said: dict[tuple[CohortId, GpuType, int, int], tuple[int, Reason]] = field(default_factory=dict)
    """The last COHORT reason per (cohort, type, gang size), with the usage it was said at."""

    @classmethod
    def of(cls, projects: Mapping[ProjectId, Project], holding: Iterable[Job]) -> QuotaBook:
        nominal: defaultdict[tuple[CohortId, GpuType], int] = defaultdict(int)
        for p in projects.values():
            if p.cohort is not None:
                for t, q in p.quotas.items():
                    nominal[(p.cohort, t)] += q.nominal
        book = cls(projects, defaultdict(int), defaultdict(int), nominal)
        for job in holding:
            book.add(job, job.gpus)
        return book

    def fork(self) -> QuotaBook:
        """A copy whose usage can change without changing this one."""
        return QuotaBook(
            self.projects,
            defaultdict(int, self.usage),
            defaultdict(int, self.cohort_usage),
            self.cohort_nominal,
        )

    def quota(self, project: ProjectId, gpu_type: GpuType) -> Quota:
        p = self.projects.get(project)
        return p.quotas.get(gpu_type, NO_QUOTA) if p is not None else NO_QUOTA

    def cohort(self, project: ProjectId) -> CohortId | None:
        p = self.projects.get(project)
        return p.cohort if p is not None else None

    def add(self, job: Job, gpus: int) -> None:
        """Count `gpus` more (or fewer, if negative) GPUs in use by `job`'s project."""
        self.version += 1
        self.usage[(job.project, job.gpu_type)] += gpus
        p = self.projects.get(job.project)  # `cohort`, inline: this runs for every job booked
        if p is not None and p.cohort is not None:
            self.cohort_usage[(p.cohort, job.gpu_type)] += gpus

    def allowed(self, project: ProjectId, gpu_type: GpuType) -> int:
        """The largest gang the project's quota admits now (Q1-Q3); 0 or less for none.
        Usage only grows during a cycle, so a gang refused now stays refused."""
        p = self.projects.get(project)
        if p is None:
            return 0
        q = p.quotas.get(gpu_type, NO_QUOTA)
        used = self.usage[(project, gpu_type)]
        best = q.nominal - used
        if p.cohort is not None and q.borrowing_limit != 0:
            limit = q.borrowing_limit
            cap = q.nominal + limit - used if limit is not None else 1 << 30
            key = (p.cohort, gpu_type)
            best = max(best, min(cap, self.cohort_nominal.get(key, 0) - self.cohort_usage[key]))
        return best

    def lends(self) -> bool:
        """Could any cohort lend a GPU now (Q2)? When none can, no project may take more
        than its nominal quota leaves it: `allowed` is at most that."""
        usage = self.cohort_usage
        return any(nominal > usage[key] for key, nominal in self.cohort_nominal.items())

    def headroom(self) -> dict[tuple[ProjectId, GpuType], int]:
        """GPUs each project may still take within its nominal quota, per type (Q1)."""
        out = {}
        for pid, p in self.projects.items():
            for t in p.quotas:
                if (left := self.room(pid, t)) > 0:
                    out[(pid, t)] = left
        return out

    def room(self, project: ProjectId, gpu_type: GpuType) -> int:
        """GPUs the project may still take within its nominal quota of this type (Q1): an
        entry of `headroom` where positive."""
        p = self.projects.get(project)
        q = p.quotas.get(gpu_type) if p is not None else None
        return q.nominal - self.usage[(project, gpu_type)] if q is not None else 0

    def within_nominal(self, job: Job) -> bool:
        """Q1: would the job keep its project within its nominal quota?"""
        quota = self.quota(job.project, job.gpu_type)
        return self.usage[(job.project, job.gpu_type)] + job.gpus <= quota.nominal

    def saved(self, gpu_type: GpuType) -> QuotaUsage:
        """The usage now, of which `restore` puts back one GPU type's (copied whole: a
        plain copy costs less than picking the type's entries)."""
        return gpu_type, dict(self.usage), dict(self.cohort_usage)

    def restore(self, saved: QuotaUsage) -> None:
        self.version += 1
        gpu_type, mine, ours = saved
        for key in [k for k in self.usage if k[1] == gpu_type]:
            self.usage[key] = mine.get(key, 0)
        for ckey in [k for k in self.cohort_usage if k[1] == gpu_type]:
            self.cohort_usage[ckey] = ours.get(ckey, 0)

    def borrowed(self, project: ProjectId, gpu_type: GpuType) -> int:
        """GPUs the project uses beyond its nominal quota (Q4)."""
        return max(0, self.usage[(project, gpu_type)] - self.quota(project, gpu_type).nominal)

    def check(self, job: Job) -> Fit | Reason:
        """How the job fits its project's quota, or why it does not."""
        key = (job.project, job.gpu_type)
        used = self.usage[key]
        found = self.terms.get(key)
        if found is None:
            found = self.terms[key] = (self.quota(*key), self.cohort(job.project))
        quota, cohort = found
        if used + job.gpus <= quota.nominal:
            return Fit.NOMINAL  # Q1
        t, limit = job.gpu_type, quota.borrowing_limit
        if cohort is None or limit == 0:
            if quota.nominal == 0:
                return Reason(ReasonCode.NO_QUOTA, f"project {job.project} has no {t} quota")  # Q3
            return _over(job, used, quota.nominal, "nominal")
        if limit is not None and used + job.gpus > quota.nominal + limit:
            return _over(job, used, quota.nominal + limit, "nominal + borrowing limit")  # Q2
        return self._lendable(cohort, job, used + job.gpus - quota.nominal)

    def _lendable(self, cohort: CohortId, job: Job, borrow: int) -> Fit | Reason:
        """Q2: the cohort's usage may reach the sum of its members' nominal quotas."""
        key = (cohort, job.gpu_type)
        in_cohort = self.cohort_usage[key]
        pool = self.cohort_nominal.get(key, 0)
        if in_cohort + job.gpus <= pool:
            return Fit.BORROWING
        said_key = (cohort, job.gpu_type, job.gpus, min(borrow, job.gpus))
        said = self.said.get(said_key)
        if said is not None and said[0] == in_cohort:
            return said[1]  # the same sentence as for the last job of this kind
        idle = max(0, pool - in_cohort)
        reason = Reason(
            ReasonCode.COHORT,
            f"needs {job.gpus} {job.gpu_type} from cohort {cohort}, {min(borrow, job.gpus)} of"
            f" them beyond its nominal quota; {idle} of the cohort's {pool} are idle",
        )
        self.said[said_key] = (in_cohort, reason)
        return reason


def _over(job: Job, used: int, limit: int, what: str) -> Reason:
    t = job.gpu_type
    return Reason(
        ReasonCode.QUOTA,
        f"project quota of {limit} {t} ({what}) in use: {used} held, job needs {job.gpus}",
    )
