"""Cycles for a loop: what one cycle derived is kept for the next (ADR 0013).

The live service and the simulator run a cycle on every event. Between two events most of
the snapshot is the same: the same nodes, the same running jobs but one, the same queue. A
`Scheduler` keeps the occupancy of running jobs and the sorted queue from the last cycle and
brings both up to date by what changed, so a cycle after one job ends costs a fraction of a
first one. After a cycle that decided nothing, a cycle that sees only arrivals is often not
walked at all: the last walk proves it decides nothing (quiet.py, ADR 0026). The result is
the same as `run_cycle` on the same snapshot, always: the tests check it on random sequences
of snapshots.

Pure, like `run_cycle`: no clock, no I/O. Jobs that did not change should be passed as the
same objects from one snapshot to the next; other objects with equal values are correct but
are re-sorted and re-derived.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from kizuna.kernel.errors import InconsistentSnapshot
from kizuna.kernel.ids import JobId
from kizuna.kernel.units import Instant
from kizuna.scheduling.cycle import Walk, walk
from kizuna.scheduling.decisions import CycleResult
from kizuna.scheduling.model import Job, RunningJob, Snapshot
from kizuna.scheduling.occupancy import Occupancy
from kizuna.scheduling.policies.base import Policy
from kizuna.scheduling.queue import Queue
from kizuna.scheduling.quiet import Quiet


@dataclass(frozen=True, slots=True)
class PendingChanges:
    """How the pending jobs changed since the previous snapshot a `Scheduler` saw: a loop
    that knows it (the simulator does, from its events) saves the queue a pass over every
    pending job. `left` are ids of jobs no longer pending, `arrived` the jobs new to it."""

    arrived: Sequence[Job] = ()
    left: Collection[JobId] = ()
    came: Sequence[RunningJob] | None = None
    """With `gone`: the running jobs new to the snapshot and those that left it (a job
    whose preemption was ordered is both: its old object gone, its new one come). None:
    the scheduler compares the running jobs itself."""
    gone: Sequence[RunningJob] = ()


class Scheduler:
    """Runs cycles of one policy over a sequence of snapshots, reusing what did not change."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._occupancy: Occupancy | None = None
        self._queue: Queue | None = None
        self._quiet: Quiet | None = None
        """The last cycle's walk, while it decided nothing (quiet.py)."""
        self._cycles = 0
        self.walks = 0
        """Cycles walked; the others were answered by the walk of a quiet one (quiet.py)."""

    def cycle(
        self, snapshot: Snapshot, now: Instant, changes: PendingChanges | None = None
    ) -> CycleResult:
        """Exactly `run_cycle(snapshot, self.policy, now)`. With `changes`, the queue is
        brought up to date by them instead of by comparing the pending jobs; changes that
        do not add up to the snapshot raise `InconsistentSnapshot`."""
        self._cycles += 1
        quiet, self._quiet = self._quiet, None
        moved = None
        if changes is not None and changes.came is not None:
            moved = (changes.came, changes.gone)
        if self._occupancy is None:
            occupancy = self._occupancy = Occupancy.of(snapshot)
        else:
            try:
                occupancy = self._occupancy = self._occupancy.advance(snapshot, moved)
            except InconsistentSnapshot:
                self._occupancy = None  # half brought up to date: derive anew next time
                raise
        queue, tiers_moved = self._queue_of(snapshot, now, changes)
        only_arrived = None  # the jobs that arrived, if nothing else changed
        if changes is not None and changes.came is not None and not changes.came:
            only_arrived = None if changes.left or changes.gone else changes.arrived
        if quiet is not None and quiet.holds(
            snapshot, now, only_arrived, queue, tiers_moved, occupancy
        ):
            self._quiet = quiet
            return quiet.again(self._later(snapshot, now))
        walked = walk(occupancy, queue, self.policy, now)
        self.walks += 1
        result = walked.result()
        self._quiet = Quiet.after(walked, result)
        return result

    def _later(self, snapshot: Snapshot, now: Instant) -> Callable[[], Walk]:
        """A walk of this cycle made when first asked for: on the kept occupancy and queue
        while no later cycle moved them on, else on both derived afresh."""
        cycles, occupancy, queue = self._cycles, self._occupancy, self._queue

        def later() -> Walk:
            if self._cycles == cycles and occupancy is not None and queue is not None:
                return walk(occupancy, queue, self.policy, now)
            return walk(
                Occupancy.of(snapshot), Queue.of(self.policy, snapshot, now), self.policy, now
            )

        return later

    def _queue_of(
        self, snapshot: Snapshot, now: Instant, changes: PendingChanges | None
    ) -> tuple[Queue, bool]:
        """The queue brought up to `snapshot`, and whether a kept one moved jobs between
        tiers."""
        queue = self._queue
        stamp = self.policy.ordering.stamp(snapshot, now)
        if queue is not None and queue.stamp == stamp:
            moved = queue.advance(self.policy, snapshot, now)
            if changes is not None:
                try:
                    if queue.apply(changes.arrived, changes.left, self.policy, snapshot, now):
                        return queue, moved
                except InconsistentSnapshot:
                    self._queue = None  # half brought up to date: sort anew next time
                    raise
            elif queue.update(self.policy, snapshot, now):
                return queue, moved
        queue = self._queue = Queue.of(self.policy, snapshot, now)
        return queue, False
