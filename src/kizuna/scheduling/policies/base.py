"""What a policy is: an ordering of pending jobs, plus the cycle's switches (ADR 0012).

Every ordering takes the same input (the snapshot and the instant) and returns a sort key for
jobs, so no caller ever branches on a policy's name.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Protocol

from kizuna.kernel.units import Instant
from kizuna.scheduling.model import Job, Snapshot

SortKey = tuple[float | str, ...]


class Ordering(Protocol):
    """Ranks pending jobs: smaller keys go first; keys end in a unique tie-break."""

    def key(self, snapshot: Snapshot, now: Instant) -> Callable[[Job], SortKey]: ...

    def stamp(self, snapshot: Snapshot, now: Instant) -> Hashable:
        """What the keys depend on besides the job: keys made under one stamp stay valid
        under an equal one, so a queue can be kept sorted between cycles (ADR 0013)."""
        ...


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
        return sorted(snapshot.pending, key=self.ordering.key(snapshot, now))


def tie_break(job: Job) -> tuple[float, str]:
    """First come, first served; the job id settles exact ties so every order is total."""
    return (job.submit_time, job.id)
