"""Multifactor priority, modelled on Slurm's priority/multifactor (ADR 0011).

priority = w_fair_share x F + w_age x A + w_size x Z + w_class x C, each factor in [0, 1]:
F the project's fair-share factor (decayed usage vs shares), A the job's age over `max_age`
(capped at 1), Z its GPUs as a fraction of all GPUs of its type in the cluster (or one minus
that when `favor_small`), C its priority class value over `class_scale` (capped at 1).

As Slurm does every PriorityCalcPeriod, priorities are computed as of the start of each
`recalc_period`, and age counts whole periods. As Slurm's, priorities are integers: each
term is rounded to a thousandth of a point (`POINT`), so sums are exact and a priority
splits exactly into a part that changes every period and is the same for all young jobs of
a project (w_fair_share x F plus the period's index x the age points of one period), and a
part of the job alone (its size and class, less its submit period's index x those age
points). A job whose age is full moves to the project's second tier, where the age part is
the full w_age. A kept queue then only re-merges projects when a period begins (ADR 0016).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import cached_property

from kizuna.kernel.errors import InvalidRequest
from kizuna.kernel.ids import GpuType, ProjectId
from kizuna.kernel.units import HOUR, MINUTE, Instant, Seconds
from kizuna.scheduling.fair_share import factors
from kizuna.scheduling.model import HIGH, Job, Snapshot
from kizuna.scheduling.policies.base import Levels, SortKey

POINT = 1000
"""Priorities are kept in thousandths of a point."""


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
    _levels: list[
        tuple[
            dict[ProjectId, float],
            int,
            int,
            dict[tuple[ProjectId, int], int],
            Callable[[Job], float],
        ]
    ] = field(default_factory=list, init=False, compare=False, repr=False)
    """The levels last worked out, with the factors (the very object) and the young tier's
    level they came from: they change only with those (ADR 0016)."""
    _stamps: list[tuple[Counter[GpuType], Hashable, object]] = field(
        default_factory=list, init=False, compare=False, repr=False
    )
    """The stamp last made, with the GPU counts (the very object) it was made of and the
    nodes (the very object) they were counted on."""

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be positive (got {value:g})"
            for name, value in (
                ("recalc_period", self.recalc_period),
                ("half_life", self.half_life),
            )
            if not value > 0
        ]
        problems += [
            f"{name} cannot be negative (got {value:g})"
            for name, value in (
                ("max_age", self.max_age),
                ("w_fair_share", self.w_fair_share),
                ("w_age", self.w_age),
                ("w_size", self.w_size),
                ("w_class", self.w_class),
            )
            if value < 0
        ]
        if problems:
            raise InvalidRequest([f"fair-share: {p}" for p in problems])

    # -- the integer parts of a priority -------------------------------------------------------

    def period(self, at: float) -> int:
        """The index of the recalc period `at` falls in."""
        return math.floor(at / self.recalc_period)

    def as_of(self, now: Instant) -> Instant:
        """The instant priorities are computed for: the start of `now`'s recalc period."""
        return Instant(self.period(now) * self.recalc_period)

    @cached_property  # the policy is frozen: worked out once
    def full_periods(self) -> int:
        """Periods of waiting after which the age factor is full (at least one)."""
        return max(1, round(self.max_age / self.recalc_period))

    @cached_property  # the policy is frozen: worked out once
    def age_step(self) -> int:
        """Age points per period waited; 0 when age counts for nothing or is always full."""
        if self.max_age <= 0:
            return 0
        return round(self.w_age * POINT / self.full_periods)

    @cached_property  # the policy is frozen: worked out once
    def full_age(self) -> int:
        return round(self.w_age * POINT) if self.max_age <= 0 else self.age_step * self.full_periods

    def fair_points(self, factor: float) -> int:
        return round(self.w_fair_share * factor * POINT)

    def job_points(self, job: Job, type_gpus: int) -> int:
        """Size and class points: the part of a priority that depends on the job alone."""
        size = self.w_size * min(job.gpus / type_gpus, 1.0) if type_gpus else 0.0
        if self.favor_small:
            size = self.w_size - size if type_gpus else 0.0
        klass = 0.0
        if self.class_scale > 0:
            klass = self.w_class * min(max(job.priority.value, 0) / self.class_scale, 1.0)
        return round(size * POINT) + round(klass * POINT)

    def age_points(self, job: Job, now: Instant) -> int:
        waited = self.period(now) - self.period(job.submit_time)
        if waited >= self.full_periods or self.max_age <= 0:
            return self.full_age
        return waited * self.age_step

    def priority(self, job: Job, now: Instant, fair: float, type_gpus: int) -> float:
        """A job's multifactor priority (higher runs first), given its project's fair-share
        factor and the number of GPUs of its type in the cluster; in points."""
        points = (
            self.fair_points(fair) + self.age_points(job, now) + self.job_points(job, type_gpus)
        )
        return points / POINT

    # -- the ordering -----------------------------------------------------------------------------

    def _inputs(
        self, snapshot: Snapshot, at: Instant
    ) -> tuple[dict[ProjectId, float], Counter[GpuType]]:
        last = self._last
        if last:
            projects, nodes, when, fair, gpus = last[0]
            if projects is snapshot.projects and nodes is snapshot.nodes and when == at:
                return fair, gpus
            if nodes is not snapshot.nodes:  # the counts depend on the nodes alone
                gpus = _gpus_by_type(snapshot)
        else:
            gpus = _gpus_by_type(snapshot)
        fair = factors(snapshot.projects, at, self.half_life)
        last[:] = [(snapshot.projects, snapshot.nodes, at, fair, gpus)]
        return fair, gpus

    def stamp(self, snapshot: Snapshot, now: Instant) -> Hashable:
        kept = self._stamps
        if kept and kept[0][2] is snapshot.nodes:  # the GPU counts come from the nodes alone
            return kept[0][1]
        _, gpus = self._inputs(snapshot, self.as_of(now))
        if kept and kept[0][0] is gpus:
            kept[:] = [(gpus, kept[0][1], snapshot.nodes)]
            return kept[0][1]
        stamp = tuple(sorted(gpus.items()))
        kept[:] = [(gpus, stamp, snapshot.nodes)]
        return stamp

    def rank(self, snapshot: Snapshot, now: Instant) -> Callable[[Job, int], SortKey]:
        _, gpus = self._inputs(snapshot, self.as_of(now))
        step, period, points = self.age_step, self.period, self.job_points

        def rank(job: Job, tier: int) -> SortKey:
            own = points(job, gpus.get(job.gpu_type, 0))
            if tier:
                return (-own, job.submit_time, job.id)
            return (period(job.submit_time) * step - own, job.submit_time, job.id)

        return rank

    def levels(self, snapshot: Snapshot, now: Instant) -> Levels:
        at = self.as_of(now)
        fair, _ = self._inputs(snapshot, at)
        young = self.period(now) * self.age_step
        kept = self._levels
        if kept and kept[0][0] is fair and kept[0][1] == young:
            _, _, old, levels, expiry = kept[0]
            return Levels(levels, (young, old), expiry, now)
        levels, old, expiry = self._levels_of(fair, young)
        kept[:] = [(fair, young, old, levels, expiry)]
        return Levels(levels, (young, old), expiry, now)

    def _levels_of(
        self, fair: dict[ProjectId, float], young: int
    ) -> tuple[dict[tuple[ProjectId, int], int], int, Callable[[Job], float]]:
        old = self.full_age
        levels: dict[tuple[ProjectId, int], int] = {}
        for project, factor in fair.items():
            points = self.fair_points(factor)
            levels[(project, 0)] = points + young
            levels[(project, 1)] = points + old
        horizon, period, length = self.full_periods, self.period, self.recalc_period

        def expiry(job: Job) -> float:
            if self.max_age <= 0:
                return -math.inf
            return (period(job.submit_time) + horizon) * length

        return levels, old, expiry


def _gpus_by_type(snapshot: Snapshot) -> Counter[GpuType]:
    totals: Counter[GpuType] = Counter()
    for node in snapshot.nodes:
        totals[node.gpu_type] += node.gpus
    return totals
