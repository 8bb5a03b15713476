"""What a policy is: an ordering of pending jobs, plus the cycle's switches (ADR 0012).

Every ordering takes the same input (the snapshot and the instant) and returns a sort key for
jobs, so no caller ever branches on a policy's name.

A key is made of two parts (ADR 0016), so that a kept queue stays sorted while priorities
move with time: a job's `rank`, which depends on the job alone (and on what the ordering's
`stamp` names), and a `level` per project and tier, which may change every cycle. Jobs of
one project and tier keep their relative order whatever the levels do; a queue keeps them
sorted by rank and merges projects by level. The key is (rank[0] - level, *rank[1:]), so
orderings whose levels are all 0 (`FLAT`) have their rank as key.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from kizuna.kernel.ids import ProjectId
from kizuna.kernel.units import Instant
from kizuna.scheduling.model import Job, Snapshot

SortKey = tuple[float | str, ...]
NEVER = float("inf")
"""The instant a job that never changes tier changes tier."""


@dataclass(frozen=True)
class Levels:
    """This cycle's part of the keys. A job is in tier 0 until `expiry(job)`, then in tier 1
    (the fair-share policy's jobs whose age factor is full); `levels` maps (project, tier) to
    an integer level, absent meaning 0."""

    levels: Mapping[tuple[ProjectId, int], int] = field(default_factory=dict)
    base: tuple[int, int] = (0, 0)
    """The level of each tier for projects `levels` does not name."""
    expiry: Callable[[Job], float] = field(default=lambda job: NEVER)
    now: Instant = Instant(0.0)

    @property
    def flat(self) -> bool:
        """Every level is 0: a key is the rank itself."""
        return not self.levels and self.base == (0, 0)

    def tier(self, job: Job) -> int:
        return 1 if self.expiry(job) <= self.now else 0

    def level(self, project: ProjectId, tier: int) -> int:
        return self.levels.get((project, tier), self.base[tier])

    def key(self, project: ProjectId, tier: int, rank: SortKey) -> SortKey:
        level = self.levels.get((project, tier), self.base[tier])
        if not level:
            return rank
        head = rank[0]
        assert isinstance(head, int)  # levels are only used with integer ranks
        return (head - level, *rank[1:])


FLAT = Levels()


class Ordering(Protocol):
    """Ranks pending jobs: smaller keys go first; keys end in a unique tie-break."""

    def rank(self, snapshot: Snapshot, now: Instant) -> Callable[[Job, int], SortKey]:
        """A job's rank in a tier: the same for every instant under one `stamp`."""
        ...

    def levels(self, snapshot: Snapshot, now: Instant) -> Levels: ...

    def stamp(self, snapshot: Snapshot, now: Instant) -> Hashable:
        """What ranks depend on besides the job: ranks made under one stamp stay valid under
        an equal one, so a queue can be kept sorted between cycles (ADR 0013)."""
        ...


def key_of(ordering: Ordering, snapshot: Snapshot, now: Instant) -> Callable[[Job], SortKey]:
    """The sort key of jobs at `now`: rank and level put together."""
    rank, levels = ordering.rank(snapshot, now), ordering.levels(snapshot, now)
    if levels.flat:
        return lambda job: rank(job, levels.tier(job))

    def key(job: Job) -> SortKey:
        tier = levels.tier(job)
        return levels.key(job.project, tier, rank(job, tier))

    return key


@dataclass(frozen=True)
class Policy:
    """An ordering and the cycle's switches: backfill, quotas, budgets."""

    name: str
    ordering: Ordering
    backfill: bool = True
    """EASY backfill: later jobs may start if they cannot delay the highest blocked job."""
    quotas: bool = True
    """Enforce nominal quotas, borrowing limits and cohorts, and reclaim borrowed GPUs."""
    budgets: bool = True
    """Admit only jobs whose walltime x GPUs fits their award's remaining GPU-hours."""

    def order(self, snapshot: Snapshot, now: Instant) -> list[Job]:
        return sorted(snapshot.pending, key=key_of(self.ordering, snapshot, now))


def tie_break(job: Job) -> tuple[float, str]:
    """First come, first served; the job id settles exact ties so every order is total."""
    return (job.submit_time, job.id)


def flat_rank(key: Callable[[Job], SortKey]) -> Callable[[Job, int], SortKey]:
    """A rank for orderings whose key depends on the job alone: one tier, level 0."""
    return lambda job, tier: key(job)
