"""The queue: pending jobs in the policy's order, and grouped by project and GPU type.

A cycle passes over whole groups that the project's quota or budget already refuses, so it
only walks the jobs that could act (ADR 0008). A `Scheduler` keeps the queue from one cycle
to the next and brings it up to date by the jobs that arrived and left (ADR 0013).

Each group keeps its jobs by rank, in one list per tier (ADR 0016): ranks do not change
while the ordering's stamp stays, so a new cycle only moves the jobs whose tier changed.
Keys are made from rank and level when the cycle walks a group; the queue's order as a whole
(`Queue.jobs`) is merged from the groups only when it is read.
"""

from __future__ import annotations

import heapq
import math
import weakref
from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Collection, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from heapq import heapify, heappop, heappush

from kizuna.kernel.errors import InconsistentSnapshot
from kizuna.kernel.ids import GpuType, JobId, ProjectId
from kizuna.kernel.units import UNLIMITED, Instant
from kizuna.scheduling.model import Job, Shape, Snapshot
from kizuna.scheduling.policies.base import NEVER, Levels, Policy, SortKey

NO_GANG = 1 << 30
"""The smallest gang of a group without jobs: larger than any request."""
GroupKey = tuple[ProjectId, GpuType]
Entry = tuple[SortKey, Job]
"""A key (or, inside a group's tier, a rank) and its job."""


@dataclass
class Group:
    """One project's pending jobs of one GPU type: per tier, by rank."""

    project: ProjectId
    tiers: tuple[list[Entry], list[Entry]] = field(default_factory=lambda: ([], []))
    least_gpus: int = NO_GANG
    least_work: float = UNLIMITED
    """The smallest gang and the smallest GPUs x walltime among them, kept up to date as
    jobs come and go: gang sizes are few, so counting them is enough; works are many, so a
    heap keeps them, its stale tops dropped when read."""
    _sizes: Counter[int] = field(default_factory=Counter)
    shapes: Counter[Shape] = field(default_factory=Counter)
    """How many jobs ask each gang shape: (GPUs per node or 0, one domain)."""
    _works: Counter[float] = field(default_factory=Counter)
    _heap: list[float] = field(default_factory=list)
    expiring: list[tuple[float, SortKey, JobId]] = field(default_factory=list)
    """Tier-0 jobs by the instant they move to tier 1 (stale entries are skipped)."""

    def __len__(self) -> int:
        return len(self.tiers[0]) + len(self.tiers[1])

    def count_all(self) -> None:
        """Count every job of the tiers in one pass."""
        jobs = [j for tier in self.tiers for _, j in tier]
        self._sizes = Counter(j.gpus for j in jobs)
        self.shapes = Counter((j.gpus_per_node or 0, j.one_domain) for j in jobs)
        self._works = Counter(j.gpus * j.walltime for j in jobs)
        self._heap = list(self._works)
        heapify(self._heap)
        self.least_gpus = min(self._sizes, default=NO_GANG)
        self.least_work = self._heap[0] if self._heap else UNLIMITED

    def count(self, job: Job) -> None:
        """Count a job that joined a tier."""
        work = job.gpus * job.walltime
        self._sizes[job.gpus] += 1
        self.shapes[(job.gpus_per_node or 0, job.one_domain)] += 1
        self._works[work] += 1
        if self._works[work] == 1:
            heappush(self._heap, work)
        self.least_gpus = min(self.least_gpus, job.gpus)
        self.least_work = min(self.least_work, work)

    def uncount(self, job: Job) -> None:
        """Stop counting a job that left its tier."""
        work = job.gpus * job.walltime
        self._sizes[job.gpus] -= 1
        if not self._sizes[job.gpus]:
            del self._sizes[job.gpus]
            if job.gpus == self.least_gpus:
                self.least_gpus = min(self._sizes, default=NO_GANG)
        shape = (job.gpus_per_node or 0, job.one_domain)
        self.shapes[shape] -= 1
        if not self.shapes[shape]:
            del self.shapes[shape]
        self._works[work] -= 1
        if not self._works[work]:
            del self._works[work]
            heap = self._heap
            while heap and heap[0] not in self._works:
                heappop(heap)
            self.least_work = heap[0] if heap else UNLIMITED

    def tier(self, tier: int, lent: set[int]) -> list[Entry]:
        """A tier's list, to change: copied first if an `Order` still holds it."""
        entries = self.tiers[tier]
        if id(entries) in lent:
            lent.discard(id(entries))
            entries = list(entries)
            self.tiers = (entries, self.tiers[1]) if tier == 0 else (self.tiers[0], entries)
        return entries


def _entries(
    project: ProjectId, tiers: tuple[list[Entry], list[Entry]], levels: Levels
) -> Iterator[Entry]:
    """Entries are merged as tuples: keys end in a unique job id, so jobs are never compared."""
    young, old = tiers
    if levels.flat:
        return heapq.merge(young, old) if old else iter(young)
    first = _leveled(young, levels.level(project, 0))
    if not old:
        return first
    return heapq.merge(first, _leveled(old, levels.level(project, 1)))


def _leveled(entries: list[Entry], level: int) -> Iterator[Entry]:
    """Entries of one tier with their keys: (rank[0] - level, *rank[1:])."""
    if not level:
        return iter(entries)
    # concatenated, not unpacked: twice as fast, and this runs for every job walked
    return (((r[0] - level,) + r[1:], j) for r, j in entries)  # type: ignore[operator]  # noqa: RUF005


@dataclass(frozen=True)
class Order:
    """The queue's order as one cycle saw it: the groups' tiers as they were, merged only
    when read. The queue copies a tier before changing it while an order holds it."""

    groups: tuple[tuple[ProjectId, tuple[list[Entry], list[Entry]]], ...]
    levels: Levels

    def jobs(self) -> list[Job]:
        streams = [_entries(project, tiers, self.levels) for project, tiers in self.groups]
        return [j for _, j in heapq.merge(*streams)]


@dataclass
class Queue:
    """Pending jobs by rank, made under one stamp of the ordering, with this cycle's levels."""

    stamp: Hashable
    pending: Sequence[Job]
    groups: dict[GroupKey, Group]
    levels: Levels
    where: dict[JobId, tuple[GroupKey, int, SortKey]]
    """Each pending job's group, tier and rank."""
    _members: set[int] | None = None
    _lent_to: weakref.ref[Order] | None = None
    """The last `Order`, as long as it may still be read."""
    _lent_ids: set[int] | None = None
    """`id()` of the tier lists that order holds, found when the queue first changes after
    it was made: copied before they change. Empty if no one could read the order any more."""
    _due: float = -math.inf
    """No group's tier-0 job moves to tier 1 before this instant (the earliest of the
    groups' `expiring` as last seen, lowered as jobs arrive): `advance` looks no sooner."""

    @classmethod
    def of(cls, policy: Policy, snapshot: Snapshot, now: Instant) -> Queue:
        ordering = policy.ordering
        levels, rank = ordering.levels(snapshot, now), ordering.rank(snapshot, now)
        groups: dict[GroupKey, Group] = {}
        where: dict[JobId, tuple[GroupKey, int, SortKey]] = {}
        flat = levels.flat
        twice = sorted(i for i, n in Counter(j.id for j in snapshot.pending).items() if n > 1)
        if twice:
            raise InconsistentSnapshot(f"pending job ids appear twice: {', '.join(twice)}")
        for job in snapshot.pending:
            gk = (job.project, job.gpu_type)
            group = groups.get(gk)
            if group is None:
                group = groups[gk] = Group(job.project)
            tier = 0 if flat else levels.tier(job)
            r = rank(job, tier)
            group.tiers[tier].append((r, job))
            where[job.id] = (gk, tier, r)
            if not flat and tier == 0 and (until := levels.expiry(job)) < NEVER:
                group.expiring.append((until, r, job.id))
        for group in groups.values():
            for entries in group.tiers:
                entries.sort(key=_first)
            heapify(group.expiring)
            group.count_all()
        return cls(ordering.stamp(snapshot, now), snapshot.pending, groups, levels, where)

    @property
    def jobs(self) -> list[Job]:
        """Every pending job in queue order (merged from the groups on each read)."""
        return self.order().jobs()

    def order(self) -> Order:
        """The order as of now, kept for reading later (copy on write: the tiers' lists are
        copied only when the queue next changes them)."""
        groups = tuple((g.project, g.tiers) for g in self.groups.values())
        order = Order(groups, self.levels)
        self._lent_to, self._lent_ids = weakref.ref(order), None
        return order

    @property
    def _lent(self) -> set[int]:
        """`id()` of the tier lists to copy before changing them: those of the last `Order`
        while it lives (a cycle's result that the caller kept can still read it; ADR 0024)."""
        lent = self._lent_ids
        if lent is None:
            order = self._lent_to() if self._lent_to is not None else None
            lent = self._lent_ids = (
                set() if order is None else {id(e) for _, tiers in order.groups for e in tiers}
            )
            self._lent_to = None
        return lent

    def __contains__(self, job: object) -> bool:
        """Is a job of this id pending?"""
        return job in self.where

    def project_of(self, job: JobId) -> ProjectId | None:
        """The project of a pending job; None if no job of this id is pending."""
        held = self.where.get(job)
        return held[0][0] if held is not None else None

    @property
    def members(self) -> set[int]:
        """`id()` of every pending job: an unchanged job is the very same object."""
        if self._members is None:
            self._members = {id(j) for j in self.pending}
        return self._members

    def advance(self, policy: Policy, snapshot: Snapshot, now: Instant) -> bool:
        """This cycle's levels; jobs whose tier changed since move to their new tier. True
        when some did."""
        ordering = policy.ordering
        self.levels = levels = ordering.levels(snapshot, now)
        if levels.flat or now < self._due:
            return False
        rank = None
        moved_any = False
        due = math.inf
        for gk, group in self.groups.items():
            expiring = group.expiring
            while expiring and expiring[0][0] <= now:
                _, r, job_id = heappop(expiring)
                held = self.where.get(job_id)
                if held is None or held[1] != 0 or held[2] != r:
                    continue  # it left the queue, or came back as another entry
                young = group.tier(0, self._lent)
                at = bisect_left(young, r, key=_first)
                _, job = young.pop(at)
                rank = rank or ordering.rank(snapshot, now)
                moved = rank(job, 1)
                insort(group.tier(1, self._lent), (moved, job), key=_first)
                self.where[job_id] = (gk, 1, moved)
                moved_any = True
            if expiring:
                due = min(due, expiring[0][0])
        self._due = due
        return moved_any

    def update(self, policy: Policy, snapshot: Snapshot, now: Instant) -> bool:
        """Bring the queue to `snapshot.pending` by its differences, found by comparing the
        pending jobs; False when too many jobs are new for that to pay (then sort anew)."""
        if snapshot.pending is self.pending:
            return True
        current = {id(j) for j in snapshot.pending}
        arrived = [j for j in snapshot.pending if id(j) not in self.members]
        if len(arrived) * 8 > len(snapshot.pending):
            return False
        left = [j.id for j in self.pending if id(j) not in current]
        return self.apply(arrived, left, policy, snapshot, now)

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
        where, groups, levels = self.where, self.groups, self.levels
        lent = self._lent if left or arrived else set()
        for job_id in left:
            held = where.pop(job_id, None)
            if held is None:
                raise InconsistentSnapshot(f"job {job_id} left the queue but was not pending")
            gk, tier, r = held
            group = groups[gk]
            entries = group.tier(tier, lent)
            _, job = entries.pop(bisect_left(entries, (r,)))  # (r,) sorts just before (r, job)
            group.uncount(job)
            if not (group.tiers[0] or group.tiers[1]):  # no job left in the group
                del groups[gk]
        rank = policy.ordering.rank(snapshot, now) if arrived else None
        for job in arrived:
            if job.id in where:
                raise InconsistentSnapshot(f"job {job.id} arrived but was already pending")
            assert rank is not None
            tier = 0 if levels.flat else levels.tier(job)
            r = rank(job, tier)
            gk = (job.project, job.gpu_type)
            joined = groups.get(gk)
            if joined is None:
                joined = groups[gk] = Group(job.project)
            insort(joined.tier(tier, lent), (r, job))  # ranks are unique: no job compared
            joined.count(job)
            where[job.id] = (gk, tier, r)
            if not levels.flat and tier == 0 and (until := levels.expiry(job)) < NEVER:
                heappush(joined.expiring, (until, r, job.id))
                self._due = min(self._due, until)
        if len(where) != len(snapshot.pending):
            raise InconsistentSnapshot(
                f"the queue's changes give {len(where)} pending jobs; the snapshot has "
                f"{len(snapshot.pending)}"
            )
        self.pending, self._members = snapshot.pending, None
        return True


def _first(entry: Entry) -> SortKey:
    return entry[0]
