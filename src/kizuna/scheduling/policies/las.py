"""Least attained service, as in Tiresias' discretized 2D-LAS (Gu et al., NSDI 2019).

A job's attained service is GPUs x time it has run (including runs before a preemption).
Jobs fall into queues by thresholds of attained service; a lower queue goes first and jobs
within a queue go first come, first served, which avoids the starvation of pure LAS.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from kizuna.kernel.units import HOUR, Instant
from kizuna.scheduling.model import Job, Snapshot
from kizuna.scheduling.policies.base import FLAT, Levels, SortKey, flat_rank, tie_break


@dataclass(frozen=True)
class Las:
    thresholds: tuple[float, ...] = (16 * HOUR, 256 * HOUR)
    """Attained GPU-seconds (16 and 256 GPU-hours) at which a job drops to the next queue."""

    def rank(self, snapshot: Snapshot, now: Instant) -> Callable[[Job, int], SortKey]:
        def key(job: Job) -> SortKey:
            return (bisect_right(self.thresholds, job.attained), *tie_break(job))

        return flat_rank(key)

    def levels(self, snapshot: Snapshot, now: Instant) -> Levels:
        return FLAT

    def stamp(self, snapshot: Snapshot, now: Instant) -> Hashable:
        return None  # a job's key depends on the job alone
