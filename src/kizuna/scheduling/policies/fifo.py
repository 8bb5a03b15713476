"""First in, first out: by submit time alone (Slurm's sched/builtin without priorities)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

from kizuna.kernel.units import Instant
from kizuna.scheduling.model import Job, Snapshot
from kizuna.scheduling.policies.base import SortKey, tie_break


@dataclass(frozen=True)
class Fifo:
    def key(self, snapshot: Snapshot, now: Instant) -> Callable[[Job], SortKey]:
        return tie_break

    def stamp(self, snapshot: Snapshot, now: Instant) -> Hashable:
        return None  # a job's key is its submit time and id, whatever else changes
