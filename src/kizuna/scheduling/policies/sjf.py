"""Smallest job first: by requested work, GPUs x walltime (Slurm users know it as the size
and time factors, planners as SJF). It shortens mean JCT when walltimes are honest and can
starve large jobs, which is what a planner compares it for; backfill keeps the head's
promise either way (ADR 0006)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

from kizuna.kernel.units import Instant
from kizuna.scheduling.model import Job, Snapshot
from kizuna.scheduling.policies.base import FLAT, Levels, SortKey, flat_rank, tie_break


@dataclass(frozen=True)
class Sjf:
    def rank(self, snapshot: Snapshot, now: Instant) -> Callable[[Job, int], SortKey]:
        def key(job: Job) -> SortKey:
            return (job.gpus * job.walltime, *tie_break(job))

        return flat_rank(key)

    def levels(self, snapshot: Snapshot, now: Instant) -> Levels:
        return FLAT

    def stamp(self, snapshot: Snapshot, now: Instant) -> Hashable:
        return None  # a job's key depends on the job alone
