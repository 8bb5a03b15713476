"""The queue: pending jobs in the policy's order, and grouped by project and GPU type.

A cycle passes over whole groups that the project's quota or budget already refuses, so it
only walks the jobs that could act (ADR 0008). A `Scheduler` keeps the queue from one cycle
to the next and brings it up to date by the jobs that arrived and left (ADR 0013).
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field

from kizuna.kernel.errors import InconsistentSnapshot
from kizuna.kernel.ids import GpuType, JobId, ProjectId
from kizuna.kernel.units import UNLIMITED, Instant
from kizuna.scheduling.model import Job, Snapshot
from kizuna.scheduling.policies.base import Policy, SortKey

GroupKey = tuple[ProjectId, GpuType]
Entry = tuple[SortKey, Job]


@dataclass
class Group:
    """One project's pending jobs of one GPU type, in queue order."""

    entries: list[Entry] = field(default_factory=list)
    least_gpus: int = 1 << 30
    least_work: float = UNLIMITED
    """The smallest gang and the smallest GPUs x walltime among them."""

    def measure(self) -> None:
        jobs = [j for _, j in self.entries]
        self.least_gpus = min([j.gpus for j in jobs], default=1 << 30)
        self.least_work = min([j.gpus * j.walltime for j in jobs], default=UNLIMITED)


@dataclass
class Queue:
    """Pending jobs sorted by the policy's keys, made under one stamp of the ordering."""

    stamp: Hashable
    pending: tuple[Job, ...]
    keys: list[SortKey]
    jobs: list[Job]
    groups: dict[GroupKey, Group]
    _members: set[int] | None = None
    _ids: set[JobId] | None = None

    @classmethod
    def of(cls, policy: Policy, snapshot: Snapshot, now: Instant) -> Queue:
        pending = snapshot.pending
        keys = list(map(policy.ordering.key(snapshot, now), pending))
        ranks = sorted(range(len(keys)), key=keys.__getitem__)  # stable, like Policy.order
        keys = [keys[i] for i in ranks]
        jobs = [pending[i] for i in ranks]
        found: dict[GroupKey, list[Entry]] = {}
        for k, job in zip(keys, jobs, strict=True):
            gk = (job.project, job.gpu_type)
            entries = found.get(gk)
            if entries is None:
                found[gk] = [(k, job)]
            else:
                entries.append((k, job))
        groups = {gk: Group(entries) for gk, entries in found.items()}
        ids = {j.id for j in jobs}
        if len(ids) != len(jobs):
            twice = sorted(i for i, n in Counter(j.id for j in jobs).items() if n > 1)
            raise InconsistentSnapshot(f"pending job ids appear twice: {', '.join(twice)}")
        for group in groups.values():
            group.measure()
        queue = cls(policy.ordering.stamp(snapshot, now), pending, keys, jobs, groups)
        queue._ids = ids
        return queue

    @property
    def members(self) -> set[int]:
        """`id()` of every job in `jobs`: an unchanged job is the very same object."""
        if self._members is None:
            self._members = {id(j) for j in self.jobs}
        return self._members

    def __contains__(self, job: object) -> bool:
        """Is a job of this id pending? (The set of ids is made on first use.)"""
        return job in self.ids

    @property
    def ids(self) -> set[JobId]:
        if self._ids is None:
            self._ids = {j.id for j in self.jobs}
        return self._ids

    def update(self, policy: Policy, snapshot: Snapshot, now: Instant) -> bool:
        """Bring the queue to `snapshot.pending` by its differences; False when too many
        jobs are new for that to pay (then sort anew)."""
        if snapshot.pending is self.pending:
            return True
        current = {id(j) for j in snapshot.pending}
        arrived = [j for j in snapshot.pending if id(j) not in self.members]
        if len(arrived) * 8 > len(snapshot.pending):
            return False
        left = [j for j in self.jobs if id(j) not in current]
        kept = [(k, j) for k, j in zip(self.keys, self.jobs, strict=True) if id(j) in current]
        keys, jobs = [k for k, _ in kept], [j for _, j in kept]
        touched: set[GroupKey] = {(j.project, j.gpu_type) for j in left}
        for gk in touched:
            group = self.groups[gk]
            group.entries = [(k, j) for k, j in group.entries if id(j) in current]
        key = policy.ordering.key(snapshot, now)
        for job in arrived:
            k = key(job)
            at = bisect_right(keys, k)  # keys are unique: they end in the job id
            keys.insert(at, k)
            jobs.insert(at, job)
            gk = (job.project, job.gpu_type)
            insort(self.groups.setdefault(gk, Group()).entries, (k, job), key=_first)
            touched.add(gk)
        for gk in touched:
            self.groups[gk].measure()
            if not self.groups[gk].entries:
                del self.groups[gk]
        ids = (self.ids - {j.id for j in left}) | {j.id for j in arrived}
        if len(ids) != len(jobs):
            raise InconsistentSnapshot("a pending job id appears twice")
        self.pending, self.keys, self.jobs = snapshot.pending, keys, jobs
        self._members, self._ids = current, ids
        return True


def _first(entry: Entry) -> SortKey:
    return entry[0]
