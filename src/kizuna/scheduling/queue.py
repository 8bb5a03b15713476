"""The queue: pending jobs in the policy's order, and grouped by project and GPU type.

A cycle passes over whole groups that the project's quota or budget already refuses, so it
only walks the jobs that could act (ADR 0008). A `Scheduler` keeps the queue from one cycle
to the next and brings it up to date by the jobs that arrived and left (ADR 0013).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import Counter
from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass, field
from heapq import heapify, heappop, heappush

from kizuna.kernel.errors import InconsistentSnapshot
from kizuna.kernel.ids import GpuType, JobId, ProjectId
from kizuna.kernel.units import UNLIMITED, Instant
from kizuna.scheduling.model import Job, Snapshot
from kizuna.scheduling.policies.base import Policy, SortKey

NO_GANG = 1 << 30
"""The smallest gang of a group without jobs: larger than any request."""
GroupKey = tuple[ProjectId, GpuType]
Entry = tuple[SortKey, Job]


@dataclass
class Group:
    """One project's pending jobs of one GPU type, in queue order."""

    entries: list[Entry] = field(default_factory=list)
    least_gpus: int = NO_GANG
    least_work: float = UNLIMITED
    """The smallest gang and the smallest GPUs x walltime among them, kept up to date as
    jobs come and go: gang sizes are few, so counting them is enough; works are many, so a
    heap keeps them, its stale tops dropped when read."""
    _sizes: Counter[int] = field(default_factory=Counter)
    _works: Counter[float] = field(default_factory=Counter)
    _heap: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, entries: list[Entry]) -> Group:
        """A group of these entries, counted in one pass."""
        group = cls(entries)
        group._sizes = Counter(j.gpus for _, j in entries)
        group._works = Counter(j.gpus * j.walltime for _, j in entries)
        group._heap = list(group._works)
        heapify(group._heap)
        group.least_gpus = min(group._sizes, default=NO_GANG)
        group.least_work = group._heap[0] if group._heap else UNLIMITED
        return group

    def count(self, job: Job) -> None:
        """Count a job that joined `entries`."""
        work = job.gpus * job.walltime
        self._sizes[job.gpus] += 1
        self._works[work] += 1
        if self._works[work] == 1:
            heappush(self._heap, work)
        self.least_gpus = min(self.least_gpus, job.gpus)
        self.least_work = min(self.least_work, work)

    def uncount(self, job: Job) -> None:
        """Stop counting a job that left `entries`."""
        work = job.gpus * job.walltime
        self._sizes[job.gpus] -= 1
        if not self._sizes[job.gpus]:
            del self._sizes[job.gpus]
            if job.gpus == self.least_gpus:
                self.least_gpus = min(self._sizes, default=NO_GANG)
        self._works[work] -= 1
        if not self._works[work]:
            del self._works[work]
            heap = self._heap
            while heap and heap[0] not in self._works:
                heappop(heap)
            self.least_work = heap[0] if heap else UNLIMITED


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
    _key_of: dict[JobId, SortKey] | None = None

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
        groups = {gk: Group.of(entries) for gk, entries in found.items()}
        ids = {j.id for j in jobs}
        if len(ids) != len(jobs):
            twice = sorted(i for i, n in Counter(j.id for j in jobs).items() if n > 1)
            raise InconsistentSnapshot(f"pending job ids appear twice: {', '.join(twice)}")
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
        for job in left:
            self.groups[(job.project, job.gpu_type)].uncount(job)
        key = policy.ordering.key(snapshot, now)
        for job in arrived:
            k = key(job)
            at = bisect_right(keys, k)  # keys are unique: they end in the job id
            keys.insert(at, k)
            jobs.insert(at, job)
            gk = (job.project, job.gpu_type)
            group = self.groups.setdefault(gk, Group())
            insort(group.entries, (k, job), key=_first)
            group.count(job)
            touched.add(gk)
        for gk in touched:
            if not self.groups[gk].entries:
                del self.groups[gk]
        ids = (self.ids - {j.id for j in left}) | {j.id for j in arrived}
        if len(ids) != len(jobs):
            raise InconsistentSnapshot("a pending job id appears twice")
        self.pending, self.keys, self.jobs = snapshot.pending, keys, jobs
        self._members, self._ids, self._key_of = current, ids, None
        return True

    def apply(
        self,
        arrived: Sequence[Job],
        left: Collection[JobId],
        policy: Policy,
        snapshot: Snapshot,
        now: Instant,
    ) -> bool:
        """Bring the queue to `snapshot.pending`, told which jobs arrived and which left since
        the snapshot it was last brought to: the work is in the jobs that changed, not in the
        queue's length. False when too many jobs are new for that to pay (then sort anew)."""
        if len(arrived) * 8 > len(snapshot.pending):
            return False
        ids = self.ids
        if self._key_of is None:
            self._key_of = {j.id: k for k, j in zip(self.keys, self.jobs, strict=True)}
        key_of = self._key_of
        keys, jobs = list(self.keys), list(self.jobs)  # a cycle read late keeps the old lists
        touched: set[GroupKey] = set()
        for job_id in left:
            k = key_of.pop(job_id, None)
            if k is None:
                raise InconsistentSnapshot(f"job {job_id} left the queue but was not pending")
            at = bisect_left(keys, k)
            job = jobs[at]
            del keys[at], jobs[at]
            ids.discard(job_id)
            gk = (job.project, job.gpu_type)
            group = self.groups[gk]
            del group.entries[bisect_left(group.entries, k, key=_first)]
            group.uncount(job)
            touched.add(gk)
        key = policy.ordering.key(snapshot, now)
        for job in arrived:
            if job.id in ids:
                raise InconsistentSnapshot(f"job {job.id} arrived but was already pending")
            k = key_of[job.id] = key(job)
            at = bisect_right(keys, k)
            keys.insert(at, k)
            jobs.insert(at, job)
            ids.add(job.id)
            gk = (job.project, job.gpu_type)
            group = self.groups.setdefault(gk, Group())
            insort(group.entries, (k, job), key=_first)
            group.count(job)
            touched.add(gk)
        if len(jobs) != len(snapshot.pending):
            raise InconsistentSnapshot(
                f"the queue's changes give {len(jobs)} pending jobs; the snapshot has "
                f"{len(snapshot.pending)}"
            )
        for gk in touched:
            if not self.groups[gk].entries:
                del self.groups[gk]
        self.pending, self.keys, self.jobs, self._members = snapshot.pending, keys, jobs, None
        return True


def _first(entry: Entry) -> SortKey:
    return entry[0]
