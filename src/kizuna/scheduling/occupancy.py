"""What running jobs hold, derived once and then kept up to date between cycles (ADR 0013).

A cycle needs, per GPU type, the GPUs each node holds, when running jobs will give them back,
which jobs may be preempted and in what order, and per project the GPUs in use. Deriving all
that from thousands of running jobs costs more than the rest of a cycle after one job ends,
so a `Scheduler` keeps one `Occupancy` and advances it by what changed between snapshots.
Cycles only ever work on forks of it: a cycle never changes it.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from kizuna.kernel.errors import InconsistentSnapshot
from kizuna.kernel.ids import GpuType, JobId, ProjectId
from kizuna.kernel.units import Instant
from kizuna.scheduling.capacity import Layout, Pool
from kizuna.scheduling.model import Node, NodeState, Project, RunningJob, Snapshot
from kizuna.scheduling.quota import QuotaBook
from kizuna.scheduling.validation import ClusterShape

TimedRelease = tuple[Instant, int, int, JobId]
"""(end bound, node index, GPUs, job): GPUs a running job gives back by then at the latest."""

VictimKey = tuple[int, float, JobId]


def victim_key(r: RunningJob) -> VictimKey:
    """Reclaim's preemption order (rule R4): lowest priority, then most recently started."""
    return (r.job.priority.value, -r.start, r.job.id)


@dataclass
class TypeOccupancy:
    """What running jobs hold of one GPU type."""

    pool: Pool
    releases: list[TimedRelease] = field(default_factory=list)
    """Sorted by instant."""
    stoppers: dict[JobId, RunningJob] = field(default_factory=dict)
    """Jobs already told to stop (preempted, within their grace period)."""
    kept: defaultdict[tuple[ProjectId, GpuType], int] = field(
        default_factory=lambda: defaultdict(int)
    )
    """GPUs of stopping jobs per (project, type): no longer counted as borrowed."""
    of_project: dict[ProjectId, list[tuple[VictimKey, RunningJob]]] = field(default_factory=dict)
    """Running jobs not yet stopping, per project, each in preemption order (reclaim
    searches one project's borrowed jobs at a time; ADR 0020)."""
    movable_gpus: list[int] = field(default_factory=list)
    """Per node, GPUs of the preemptible jobs of `of_project` (none on nodes that take no
    work): what reclaim could free at most."""

    def __post_init__(self) -> None:
        if not self.movable_gpus:
            self.movable_gpus = [0] * len(self.pool.nodes)

    def apply(self, gone: list[RunningJob], came: list[RunningJob]) -> None:
        """Take out the jobs that ended and put in the new ones. What a cycle keeps reading
        (`releases`, `of_project` and its lists, `movable_gpus`) is replaced, never edited
        in place, so a cycle set up earlier sees what it saw; `stoppers` and `kept` are read
        only while a cycle is set up (`type_state`)."""
        pool, stoppers, kept, index = self.pool, self.stoppers, self.kept, self.pool.index
        dropped: set[TimedRelease] = set()
        added: list[TimedRelease] = []
        for r in gone:
            job, end = r.job, r.end_bound
            for node, indices in r.allocation.parts:
                pool.release(node, indices)
                dropped.add((end, index[node], len(indices), job.id))
            if r.stopping_at is not None:
                kept[(job.project, job.gpu_type)] -= job.gpus
                del stoppers[job.id]
        for r in came:
            job, end = r.job, r.end_bound
            for node, indices in r.allocation.parts:
                pool.hold(node, indices, job.id)
                added.append((end, index[node], len(indices), job.id))
            if r.stopping_at is not None:
                kept[(job.project, job.gpu_type)] += job.gpus
                stoppers[job.id] = r
        self.releases = _merged(self.releases, dropped, added)
        of_project = dict(self.of_project)
        gpus = list(self.movable_gpus)
        copied: set[ProjectId] = set()
        schedulable = pool.schedulable
        for r, sign in [(r, -1) for r in gone] + [(r, 1) for r in came]:
            if r.stopping_at is not None:
                continue
            key, project = victim_key(r), r.job.project
            mine = of_project.get(project, [])
            if project not in copied:
                copied.add(project)
                mine = of_project[project] = list(mine)
            here = bisect_left(mine, (key,))  # keys are unique: (key,) sorts just before (key, r)
            if sign > 0:
                mine.insert(here, (key, r))
            else:
                del mine[here]
            if r.job.preemptible:
                for node, indices in r.allocation.parts:
                    i = index[node]
                    if schedulable[i]:
                        gpus[i] += sign * len(indices)
        self.of_project, self.movable_gpus = of_project, gpus


def _merged(
    items: list[TimedRelease], dropped: Iterable[TimedRelease], added: list[TimedRelease]
) -> list[TimedRelease]:
    """Sorted `items` less `dropped` (each one of them), plus `added`: a new list, found by
    binary search (few change between cycles; many are kept)."""
    kept = list(items)
    for x in dropped:
        del kept[bisect_left(kept, x)]
    if len(added) > 64:
        return sorted(kept + added)
    for x in added:
        insort(kept, x)
    return kept


def _same_quotas(old: Mapping[ProjectId, Project], new: Mapping[ProjectId, Project]) -> bool:
    """Do two project tables give the same quotas and cohorts? Usage and budgets may differ:
    the occupancy does not depend on them."""
    if old is new:
        return True
    if old.keys() != new.keys():
        return False
    return all(
        (a := old[pid]).cohort == (b := new[pid]).cohort and a.quotas == b.quotas for pid in new
    )


@dataclass
class Occupancy:
    """What the running jobs of a snapshot hold, per GPU type and per project."""

    snapshot: Snapshot
    types: dict[GpuType, TypeOccupancy]
    quota: QuotaBook
    cluster: ClusterShape
    up: ClusterShape
    running: dict[int, RunningJob]
    """The running jobs by object identity: an unchanged job is the very same object."""
    holding: dict[tuple[ProjectId, GpuType], dict[int, RunningJob]] = field(default_factory=dict)
    """Running jobs per (project, type), by `id()`, for budget commitments and promises:
    each replaced, never changed in place, as cycles keep reading the ones they saw."""
    _headroom: tuple[int, dict[tuple[ProjectId, GpuType], int]] | None = None
    """`quota.headroom()`, with the quota book's version it was worked out at."""
    _touched: set[tuple[ProjectId, GpuType]] = field(default_factory=set)
    """(project, type) whose usage changed since `_headroom` was worked out."""

    @classmethod
    def of(cls, snapshot: Snapshot) -> Occupancy:
        by_type: defaultdict[GpuType, list[Node]] = defaultdict(list)
        for node in snapshot.nodes:
            by_type[node.gpu_type].append(node)
        types = {t: TypeOccupancy(Pool(Layout.of(ns))) for t, ns in by_type.items()}
        occupancy = cls(
            snapshot,
            types,
            QuotaBook.of(snapshot.projects, ()),
            ClusterShape.of(snapshot.nodes),
            ClusterShape.of(n for n in snapshot.nodes if n.state is NodeState.UP),
            {},
        )
        occupancy._apply((), snapshot.running)
        return occupancy

    def headroom(self) -> dict[tuple[ProjectId, GpuType], int]:
        """GPUs each project may still take within its nominal quota, per type (Q1), as
        the running jobs leave it; kept while their usage is unchanged (never changed by
        its readers)."""
        kept = self._headroom
        if kept is not None and kept[0] == self.quota.version:
            return kept[1]
        if kept is None:
            room = self.quota.headroom()
        else:  # a new dict, changed where usage changed: cycles may still read the old one
            room = dict(kept[1])
            for key in self._touched:
                left = self.quota.room(*key)
                if left > 0:
                    room[key] = left
                else:
                    room.pop(key, None)
        self._touched = set()
        self._headroom = (self.quota.version, room)
        return room

    def advance(
        self,
        snapshot: Snapshot,
        moved: tuple[Sequence[RunningJob], Sequence[RunningJob]] | None = None,
    ) -> Occupancy:
        """The occupancy of `snapshot`: updated by the running jobs that came and went, or
        derived anew when the nodes or the projects changed. `moved` (came, gone), when the
        caller knows it, spares a comparison of every running job; it must add up to the
        snapshot, or `InconsistentSnapshot` is raised."""
        same_nodes = snapshot.nodes is self.snapshot.nodes or snapshot.nodes == self.snapshot.nodes
        if not (same_nodes and _same_quotas(self.snapshot.projects, snapshot.projects)):
            return Occupancy.of(snapshot)
        self.quota.projects = snapshot.projects
        if moved is None:
            current = {id(r) for r in snapshot.running}
            gone = [r for key, r in self.running.items() if key not in current]
            came = [r for r in snapshot.running if id(r) not in self.running]
        else:
            came, gone = list(moved[0]), list(moved[1])
            unknown = [r.job.id for r in gone if id(r) not in self.running]
            again = [r.job.id for r in came if id(r) in self.running]
            if unknown or again:
                raise InconsistentSnapshot(
                    "the running jobs' changes do not match: "
                    + ", ".join([*(f"{j} was not running" for j in unknown),
                                 *(f"{j} was already running" for j in again)])
                )  # fmt: skip
        self._apply(gone, came)
        if len(self.running) != len(snapshot.running):
            raise InconsistentSnapshot(
                f"the running jobs' changes give {len(self.running)} running jobs; the "
                f"snapshot has {len(snapshot.running)}"
            )
        self.snapshot = snapshot
        return self

    def _apply(self, gone: Iterable[RunningJob], came: Iterable[RunningJob]) -> None:
        by_type: defaultdict[GpuType, tuple[list[RunningJob], list[RunningJob]]] = defaultdict(
            lambda: ([], [])
        )
        touched = self._touched
        for r in gone:
            touched.add((r.job.project, r.job.gpu_type))
            by_type[r.job.gpu_type][0].append(r)
            self.quota.add(r.job, -r.job.gpus)
            del self.running[id(r)]
        for r in came:
            if r.job.gpu_type not in self.types:
                raise InconsistentSnapshot(
                    f"running job {r.job.id} holds {r.job.gpu_type}, which no node has"
                )
            touched.add((r.job.project, r.job.gpu_type))
            by_type[r.job.gpu_type][1].append(r)
            self.quota.add(r.job, r.job.gpus)
            self.running[id(r)] = r
        for t, (out, into) in by_type.items():
            self.types[t].apply(out, into)
        holding, copied = self.holding, set()
        for r, sign in [(r, -1) for r in gone] + [(r, 1) for r in came]:
            key = (r.job.project, r.job.gpu_type)
            if key not in copied:
                copied.add(key)
                holding[key] = dict(holding.get(key, {}))
            if sign > 0:
                holding[key][id(r)] = r
            else:
                del holding[key][id(r)]
