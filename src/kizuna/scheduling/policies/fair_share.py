"""Multifactor priority, modelled on Slurm's priority/multifactor (ADR 0011).

priority = w_fair_share x F + w_age x A + w_size x Z + w_class x C, each factor in [0, 1]:
F the project's fair-share factor (decayed usage vs shares), A the job's age over `max_age`
(capped at 1), Z its size as a fraction of the largest pending job (or its inverse when
`favor_small`), C its priority class value over the largest class value pending.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kizuna.kernel.units import HOUR, Instant, Seconds
from kizuna.scheduling.fair_share import factors
from kizuna.scheduling.model import Job, Snapshot
from kizuna.scheduling.policies.base import SortKey


@dataclass(frozen=True)
class FairShare:
    half_life: Seconds = Seconds(7 * 24 * HOUR)
    max_age: Seconds = Seconds(7 * 24 * HOUR)
    w_fair_share: float = 10_000.0
    w_age: float = 1_000.0
    w_size: float = 100.0
    w_class: float = 10_000.0
    favor_small: bool = False

    def key(self, snapshot: Snapshot, now: Instant) -> Callable[[Job], SortKey]:
        fair = factors(snapshot.projects, now, self.half_life)
        weighted = {pid: self.w_fair_share * f for pid, f in fair.items()}
        largest = max((j.gpus for j in snapshot.pending), default=1)
        top_class = max((j.priority.value for j in snapshot.pending), default=0) or 1
        per_gpu = (-1.0 if self.favor_small else 1.0) * self.w_size / largest
        size_base = self.w_size if self.favor_small else 0.0
        per_class = self.w_class / top_class
        age_rate = self.w_age / self.max_age if self.max_age > 0 else 0.0
        full_age = self.w_age

        def key(job: Job) -> SortKey:  # the formula of `priority`, unrolled for 50,000 jobs
            age = (now - job.submit_time) * age_rate if age_rate else full_age
            age = full_age if age > full_age else max(age, 0.0)
            value = (
                weighted.get(job.project, 0.0)
                + age
                + size_base
                + per_gpu * job.gpus
                + per_class * max(job.priority.value, 0)
            )
            return (-value, job.submit_time, job.id)

        return key

    def priority(self, job: Job, now: Instant, fair: float, largest: int, top_class: int) -> float:
        """A job's multifactor priority (higher runs first), given its project's factor."""
        age = min(max(now - job.submit_time, 0.0) / self.max_age, 1.0) if self.max_age > 0 else 1.0
        size = job.gpus / largest
        if self.favor_small:
            size = 1.0 - size
        return (
            self.w_fair_share * fair
            + self.w_age * age
            + self.w_size * size
            + self.w_class * max(job.priority.value, 0) / top_class
        )
