"""Multifactor priority, modelled on Slurm's priority/multifactor (ADR 0011).

priority = w_fair_share x F + w_age x A + w_size x Z + w_class x C, each factor in [0, 1]:
F the project's fair-share factor (decayed usage vs shares), A the job's age over `max_age`
(capped at 1), Z its GPUs as a fraction of all GPUs of its type in the cluster (or one minus
that when `favor_small`), C its priority class value over `class_scale` (capped at 1).

As Slurm does every PriorityCalcPeriod, priorities are computed as of the start of each
`recalc_period`: between two such instants the order of the queue only changes by jobs
arriving and leaving, which lets a scheduler keep it sorted (ADR 0013).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from kizuna.kernel.ids import GpuType, ProjectId
from kizuna.kernel.units import HOUR, MINUTE, Instant, Seconds
from kizuna.scheduling.fair_share import factors
from kizuna.scheduling.model import HIGH, Job, Snapshot
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
    class_scale: int = HIGH.value
    recalc_period: Seconds = Seconds(5 * MINUTE)
    _last: list[tuple[object, object, Instant, dict[ProjectId, float], Counter[GpuType]]] = field(
        default_factory=list, init=False, compare=False, repr=False
    )
    """The factors and GPU counts last worked out, with the very objects they came from: a
    loop passes the same projects and nodes between refreshes, so most cycles reuse them."""

    def _inputs(
        self, snapshot: Snapshot, at: Instant
    ) -> tuple[dict[ProjectId, float], Counter[GpuType]]:
        last = self._last
        if last:
            projects, nodes, when, fair, gpus = last[0]
            if projects is snapshot.projects and nodes is snapshot.nodes and when == at:
                return fair, gpus
        fair, gpus = factors(snapshot.projects, at, self.half_life), _gpus_by_type(snapshot)
        last[:] = [(snapshot.projects, snapshot.nodes, at, fair, gpus)]
        return fair, gpus

    def as_of(self, now: Instant) -> Instant:
        """The instant priorities are computed for: the start of `now`'s recalc period."""
        if self.recalc_period <= 0:
            return now
        return Instant(math.floor(now / self.recalc_period) * self.recalc_period)

    def stamp(self, snapshot: Snapshot, now: Instant) -> Hashable:
        at = self.as_of(now)
        fair, gpus = self._inputs(snapshot, at)
        return (at, tuple(sorted(fair.items())), tuple(sorted(gpus.items())))

    def key(self, snapshot: Snapshot, now: Instant) -> Callable[[Job], SortKey]:
        at = self.as_of(now)
        fair, gpus = self._inputs(snapshot, at)
        weighted: dict[ProjectId, float] = {p: self.w_fair_share * f for p, f in fair.items()}
        sign = -1.0 if self.favor_small else 1.0
        per_gpu = {t: sign * self.w_size / n for t, n in gpus.items() if n}
        size_base = self.w_size if self.favor_small else 0.0
        per_class = self.w_class / self.class_scale if self.class_scale > 0 else 0.0
        age_rate = self.w_age / self.max_age if self.max_age > 0 else 0.0
        full_age, full_class, full_size = self.w_age, self.w_class, self.w_size

        def key(job: Job) -> SortKey:  # the formula of `priority`, unrolled for 50,000 jobs
            age = (at - job.submit_time) * age_rate if age_rate else full_age
            if age > full_age:
                age = full_age
            elif age < 0.0:
                age = 0.0
            size = per_gpu.get(job.gpu_type, 0.0) * job.gpus
            if size > full_size:
                size = full_size
            elif size < -full_size:
                size = -full_size
            klass = per_class * job.priority.value
            if klass > full_class:
                klass = full_class
            elif klass < 0.0:
                klass = 0.0
            return (
                -(weighted.get(job.project, 0.0) + age + size_base + size + klass),
                job.submit_time,
                job.id,
            )

        return key

    def priority(self, job: Job, now: Instant, fair: float, type_gpus: int) -> float:
        """A job's multifactor priority (higher runs first), given its project's fair-share
        factor and the number of GPUs of its type in the cluster."""
        at = self.as_of(now)
        age = min(max(at - job.submit_time, 0.0) / self.max_age, 1.0) if self.max_age > 0 else 1.0
        size = min(job.gpus / type_gpus, 1.0) if type_gpus else 0.0
        if self.favor_small:
            size = 1.0 - size
        klass = min(max(job.priority.value, 0) / self.class_scale, 1.0) if self.class_scale else 0
        return (
            self.w_fair_share * fair + self.w_age * age + self.w_size * size + self.w_class * klass
        )


def _gpus_by_type(snapshot: Snapshot) -> Counter[GpuType]:
    totals: Counter[GpuType] = Counter()
    for node in snapshot.nodes:
        totals[node.gpu_type] += node.gpus
    return totals
