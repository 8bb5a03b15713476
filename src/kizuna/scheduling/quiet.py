"""A cycle that decided nothing, and what it proves about the next ones (ADR 0026).

Between two events, most often one job arrives and nothing else happens. A `Scheduler` keeps
the walk of its last cycle when that cycle decided nothing (no admission, no preemption, and
no GPUs being released claimed for a reclaiming job, which books quota for it); the next
cycle decides nothing either, and is not walked, when:
 N1 only jobs arrived since (and the clock moved on): the running jobs, the nodes and the
    projects are the very ones the walk saw, so are the books; no job left the queue, none
    moved tier and the levels are the same, so the old jobs stand in the same order; there
    are no reservations and budgets are off (both answer by the clock);
 N2 the clock has not reached an instant the walk's answers hang on: the promised start of
    each type's head (a shadow starts at the later of the clock and a release), the first
    instant a borrower left out for its minimum runtime could be preempted (R3,
    `Reclaimer.eligible_at`); nor passed the last instant every job considered after its
    type's head keeps being late or in time for that start (`Walk.in_time_until`);
 N3 no arrival is a job GPUs are kept for (R6: it would change what the others may use),
    and the walk, as it ended, passes each arrival over (`Walk.passes_over`): its quota
    refuses it, or it stands after its type's head and is too large to start or to reclaim.
Then the cycle would consider the jobs the walk considered, in the same order and with the
same answers (nothing they read changed), pass over the jobs it passed over (its bounds come
from those answers; a late job stays late), and pass over the arrivals: no decision, and the
walk's shadows. Its reasons and order, which do read the clock, are worked out when first
read, by a cycle walked then. The property tests replay arrival-only sequences through a
`Scheduler` and compare every cycle with `run_cycle`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

from kizuna.kernel.ids import JobId
from kizuna.kernel.units import Instant
from kizuna.scheduling.cycle import Walk
from kizuna.scheduling.decisions import CycleResult, Reason, ShadowReservation
from kizuna.scheduling.model import Job, Snapshot
from kizuna.scheduling.occupancy import Occupancy
from kizuna.scheduling.policies.base import Levels
from kizuna.scheduling.queue import Queue
from kizuna.scheduling.views import LazyOrder, LazyReasons


@dataclass
class Quiet:
    """The walk of a cycle that decided nothing, and the instants its proof holds until."""

    walk: Walk
    shadows: tuple[ShadowReservation, ...]
    """The walk's shadows: those of every cycle the proof answers."""
    levels: Levels
    """The walk's levels (the queue's move on with it)."""
    _bounds: tuple[float, float] | None = None
    """N2: the proof holds while the clock is before the first and not after the second."""

    @classmethod
    def after(cls, walk: Walk, result: CycleResult) -> Quiet | None:
        """What a cycle that decided nothing proves; None for any other cycle (N1)."""
        if walk.events:
            return None  # it admitted, reclaimed (with victims or GPUs being released)
        if walk.policy.budgets or walk.snapshot.reservations:
            return None
        # a copy without the queue's order (the result keeps the walk's): holding it would
        # make the queue copy its lists before each change, for reasons no one may read
        kept = copy.copy(walk)
        kept.order = None
        return cls(kept, result.shadows, walk.queue.levels)

    def holds(
        self,
        snapshot: Snapshot,
        now: Instant,
        arrived: Sequence[Job] | None,
        queue: Queue,
        moved: bool,
        occupancy: Occupancy,
    ) -> bool:
        """Does the next cycle, on `snapshot` at `now`, decide nothing? `arrived`: the jobs
        that arrived since the walk's cycle, or None if anything else changed; `queue` and
        `moved`: the queue brought up to date, and whether any of its jobs changed tier."""
        walk, seen = self.walk, self.walk.snapshot
        if arrived is None or moved or queue is not walk.queue or snapshot.reservations:
            return False  # N1
        if snapshot.nodes is not seen.nodes or snapshot.projects is not seen.projects:
            return False  # N1
        levels = queue.levels
        if levels is not self.levels and (
            levels.levels != self.levels.levels or levels.base != self.levels.base
        ):
            return False  # N1
        before, by = self._instants()
        if not (walk.now <= now < before and now <= by):
            return False  # N2
        if arrived:
            kept = {r.stopping_for for t in occupancy.types.values() for r in t.stoppers.values()}
            if any(job.id in kept for job in arrived):
                return False  # N3
            if not all(walk.passes_over(job, now) for job in arrived):
                return False  # N3
        return True

    def _instants(self) -> tuple[float, float]:
        """N2's two instants, worked out on first use."""
        if self._bounds is None:
            walk = self.walk
            before = math.inf
            for state in walk.types.values():
                before = min(before, state.reclaimer.eligible_at)
                if state.shadow is not None:
                    before = min(before, state.shadow.start)
            self._bounds = (before, walk.in_time_until())
        return self._bounds

    def again(self, later: Callable[[], Walk]) -> CycleResult:
        """The result of a cycle `holds` answered: no decisions, the walk's shadows, and
        reasons and order from `later`, a walk of that cycle made when they are first read."""
        reasons: dict[JobId, Reason] = {}
        full = cache(later)

        def fill() -> None:
            walked = full()
            walked.explain()
            reasons.update(walked.reasons)

        return CycleResult(
            admissions=(),
            preemptions=(),
            reasons=LazyReasons(reasons, fill),
            shadows=self.shadows,
            order=LazyOrder(lambda: full().effective_order()),
        )
