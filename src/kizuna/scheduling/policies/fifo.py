"""First in, first out: by submit time alone (Slurm's sched/builtin without priorities)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

from kizuna.kernel.units import Instant
from kizuna.scheduling.model import Job, Snapshot
from kizuna.scheduling.policies.base import FLAT, Levels, SortKey, flat_rank, tie_break


@dataclass(frozen=True)
class Fifo:
    def rank(self, snapshot: Snapshot, now: Instant) -> Callable[[Job, int], SortKey]:
        return flat_rank(tie_break)

    def levels(self, snapshot: Snapshot, now: Instant) -> Levels:
        return FLAT

    def stamp(self, snapshot: Snapshot, now: Instant) -> Hashable:
        return None  # a job's key is its submit time and id, whatever else changes
