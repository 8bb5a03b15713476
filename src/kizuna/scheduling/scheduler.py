"""Cycles for a loop: what one cycle derived is kept for the next (ADR 0013).

The live service and the simulator run a cycle on every event. Between two events most of
the snapshot is the same: the same nodes, the same running jobs but one, the same queue. A
`Scheduler` keeps the occupancy of running jobs and the sorted queue from the last cycle and
brings both up to date by what changed, so a cycle after one job ends costs a fraction of a
first one. The result is the same as `run_cycle` on the same snapshot, always: the tests
check it on random sequences of snapshots.

Pure, like `run_cycle`: no clock, no I/O. Jobs that did not change should be passed as the
same objects from one snapshot to the next; other objects with equal values are correct but
are re-sorted and re-derived.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Hashable
from dataclasses import dataclass

from kizuna.kernel.ids import JobId
from kizuna.kernel.units import Instant
from kizuna.scheduling.cycle import cycle_on
from kizuna.scheduling.decisions import CycleResult
from kizuna.scheduling.model import Job, Snapshot
from kizuna.scheduling.occupancy import Occupancy
from kizuna.scheduling.policies.base import Policy, SortKey


@dataclass
class Queue:
    """Pending jobs sorted by the policy's keys, made under one stamp of the ordering."""

    stamp: Hashable
    pending: tuple[Job, ...]
    keys: list[SortKey]
    jobs: list[Job]
    members: set[int]
    """`id()` of every job in `jobs`."""
    ids: set[JobId]

    @classmethod
    def of(cls, policy: Policy, snapshot: Snapshot, now: Instant, stamp: Hashable) -> Queue:
        key = policy.ordering.key(snapshot, now)
        keys = [key(j) for j in snapshot.pending]
        ranks = sorted(range(len(keys)), key=keys.__getitem__)  # stable, like Policy.order
        jobs = [snapshot.pending[i] for i in ranks]
        members, ids = {id(j) for j in jobs}, {j.id for j in jobs}
        return cls(stamp, snapshot.pending, [keys[i] for i in ranks], jobs, members, ids)

    def update(self, policy: Policy, snapshot: Snapshot, now: Instant) -> bool:
        """Bring the queue to `snapshot.pending` by its differences; False when too many
        jobs are new for that to pay (then sort anew)."""
        if snapshot.pending is self.pending:
            return True
        current = {id(j) for j in snapshot.pending}
        arrived = [j for j in snapshot.pending if id(j) not in self.members]
        if len(arrived) * 8 > len(snapshot.pending):
            return False
        kept = [(k, j) for k, j in zip(self.keys, self.jobs, strict=True) if id(j) in current]
        keys, jobs = [k for k, _ in kept], [j for _, j in kept]
        key = policy.ordering.key(snapshot, now)
        for job in arrived:
            k = key(job)
            at = bisect_right(keys, k)  # keys are unique: they end in the job id
            keys.insert(at, k)
            jobs.insert(at, job)
        self.pending, self.keys, self.jobs, self.members = snapshot.pending, keys, jobs, current
        self.ids = {j.id for j in jobs}
        return True


class Scheduler:
    """Runs cycles of one policy over a sequence of snapshots, reusing what did not change."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._occupancy: Occupancy | None = None
        self._queue: Queue | None = None

    def cycle(self, snapshot: Snapshot, now: Instant) -> CycleResult:
        """Exactly `run_cycle(snapshot, self.policy, now)`."""
        if self._occupancy is None:
            self._occupancy = Occupancy.of(snapshot)
        else:
            self._occupancy = self._occupancy.advance(snapshot)
        order = list(self._order(snapshot, now))
        assert self._queue is not None
        return cycle_on(self._occupancy, order, self._queue.ids, self.policy, now)

    def _order(self, snapshot: Snapshot, now: Instant) -> list[Job]:
        stamp = self.policy.ordering.stamp(snapshot, now)
        queue = self._queue
        if queue is None or queue.stamp != stamp or not queue.update(self.policy, snapshot, now):
            queue = self._queue = Queue.of(self.policy, snapshot, now, stamp)
        return queue.jobs
