"""What a cycle tracks for one GPU type: its pool, releases, reclaimer and promise."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from kizuna.kernel.ids import GpuType, JobId, ProjectId
from kizuna.kernel.units import Instant
from kizuna.scheduling.backfill import Promise, Shadow
from kizuna.scheduling.budget import BudgetUsage
from kizuna.scheduling.capacity import Pool, View
from kizuna.scheduling.decisions import Reason
from kizuna.scheduling.model import Reservation, RunningJob, Shape
from kizuna.scheduling.occupancy import TypeOccupancy
from kizuna.scheduling.policies.base import SortKey
from kizuna.scheduling.queue import Queue
from kizuna.scheduling.quota import QuotaBook, QuotaUsage
from kizuna.scheduling.reclaim import Reclaimer

NOTHING: frozenset[int] = frozenset()
"""No node excluded."""
Alike = tuple[str, int, int | None, bool, bool, bool, float | None]
"""What a cycle reads of a waiting job behind its type's head (`_Cycle._alike`)."""
BACKFILL = "backfill"
RESERVED = "reserved"
"""Keys of `TypeState.said` for the reasons that depend on the type's head alone."""


class Outcome(Enum):
    """What considering one job came to."""

    ADMITTED = "admitted"
    RECLAIMING = "reclaiming"
    WAITING = "waiting"
    INVALID = "invalid"


@dataclass
class TypeState:
    """Everything the cycle tracks for one GPU type."""

    pool: Pool
    releases: list[tuple[Instant, int, int, JobId]]
    """Sorted; replaced when it changes, never changed in place (the occupancy's at first)."""
    reclaimer: Reclaimer
    reservations: list[tuple[Reservation, frozenset[int]]]
    stopping_until: list[Instant]
    """Per node, when GPUs of already-preempted jobs will have been released."""
    owner_of: dict[JobId, JobId]
    """Stopping jobs whose GPUs are kept for the waiting job they were preempted for."""
    kept_for: dict[ProjectId, set[JobId]]
    """Per project, its waiting jobs with GPUs kept for them (R6): the walk never passes
    them over by the reclaimer's failures, which they do not read (ADR 0024)."""
    moving: dict[JobId, RunningJob]
    """The running jobs whose releases a head's search sees moved: those of `owner_of`
    (kept for one job) and this cycle's victims (`stops`), by id."""
    never: dict[Shape, int] = field(default_factory=dict)
    """Smallest gang per shape that no release of running jobs would ever make room for."""
    stops: dict[JobId, Instant] = field(default_factory=dict)
    """When this cycle's victims will have stopped (earlier than their walltime)."""
    shadow: Shadow | None = None
    head_at: tuple[int, SortKey] | None = None
    """Where the head that holds the line stood in the walk: (phase, key)."""
    promise: Promise = field(default_factory=Promise.none)
    """What the shadow job needs kept for its promised start besides GPUs."""
    closed_above: int = 1 << 30
    """Once the head holds the line, no job of this many GPUs or more can start this cycle."""
    books_at_start: tuple[QuotaUsage, BudgetUsage] | None = None
    usable_log: list[list[int]] = field(default_factory=list)
    """GPUs per node of `pool.now` before the cycle's first admission of this type and
    after each: what a job passed over would have found in its turn (`_Cycle.explain`,
    ADR 0024)."""
    views_then: dict[int, View] = field(default_factory=dict)
    """Views of `usable_log`'s entries, made by `explain` as it needs them."""
    waits: dict[Alike, tuple[tuple[int, int, int, int], Reason]] = field(default_factory=dict)
    """The last reason given per kind of job (`_Cycle._alike`) once the head holds the line,
    with the books' and views' versions it was given at."""
    said: dict[tuple[GpuType, int, int | None, bool] | str, Reason] = field(default_factory=dict)
    """Reasons of jobs after the head, shared once it holds the line (its promise never
    changes within a cycle): per kind of request for jobs waiting behind it, and one each
    for `BACKFILL` and `RESERVED`, whose sentences name no request."""

    def narrow(self, backfill: bool) -> None:
        """Once the head holds the line: without backfill every later job waits; with it, a
        job of at least the smallest size that failed to fit, or of more GPUs than are free,
        cannot fit any more this cycle (capacity only shrinks)."""
        if self.shadow is None:
            return
        if not backfill:
            self.closed_above = 0
            return
        failed = self.pool.now.failed.get((0, False, NOTHING), 1 << 30)
        self.closed_above = min(failed, self.pool.now.free + 1)


def type_state(
    held: TypeOccupancy,
    reservations: Iterable[Reservation],
    quota: QuotaBook,
    pending: Queue,
    now: Instant,
) -> TypeState:
    """A cycle's own copy of what running jobs hold of one GPU type. GPUs of stopping jobs
    preempted for a job still waiting are kept for that job (reclaim rule R6)."""
    pool = held.pool.fork()
    releasing = [0] * len(pool.nodes)
    until = [now] * len(pool.nodes)
    earmarked: dict[JobId, dict[int, int]] = {}
    owner_of: dict[JobId, JobId] = {}
    moving: dict[JobId, RunningJob] = {}
    for r in held.stoppers.values():
        owner = r.stopping_for if r.stopping_for is not None and r.stopping_for in pending else None
        if owner is not None:
            owner_of[r.job.id] = owner
            moving[r.job.id] = r
        for node, indices in r.allocation.parts:
            i = pool.index[node]
            if pool.schedulable[i]:
                if owner is None:
                    releasing[i] += len(indices)
                else:
                    mine = earmarked.setdefault(owner, {})
                    mine[i] = mine.get(i, 0) + len(indices)
            until[i] = Instant(max(until[i], r.end_bound))
    kept = defaultdict(int, held.kept)
    kept_for: dict[ProjectId, set[JobId]] = {}
    for owner in earmarked:
        project = pending.project_of(owner)
        if project is not None:
            kept_for.setdefault(project, set()).add(owner)
    reclaimer = Reclaimer(
        pool, quota, held.of_project, held.movable_gpus, releasing, kept, now, earmarked
    )
    return TypeState(
        pool,
        held.releases,  # replaced, never changed in place, by the occupancy and the cycle
        reclaimer,
        _reservations(pool, reservations, now) if reservations else [],
        until,
        owner_of,
        kept_for,
        moving,
    )


def _reservations(
    pool: Pool, reservations: Iterable[Reservation], now: Instant
) -> list[tuple[Reservation, frozenset[int]]]:
    out = []
    for r in reservations:
        nodes = frozenset(pool.index[n] for n in r.nodes if n in pool.index)
        if nodes and r.end > now:
            out.append((r, nodes))
    return out
