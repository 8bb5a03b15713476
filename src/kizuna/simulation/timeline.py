"""What the cluster looked like over a replay: GPUs busy and in service, jobs waiting.

The replay appends one `Sample` after every instant it handles; each value holds until the
next sample (a step function). Reports draw it resampled to a few hundred points: the
time-weighted mean of each series over equal buckets (`resample`), so a burst shorter than
a bucket still moves the line by its weight rather than vanishing or dominating.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

from kizuna.kernel.ids import GpuType


@dataclass(frozen=True, slots=True)
class Series:
    """A step function: `values[i]` holds from `times[i]` to `times[i + 1]`."""

    times: Sequence[float]
    values: Sequence[float]


@dataclass
class Timeline:
    """Per-instant samples, kept as compact arrays (a million samples take ~50 MB)."""

    types: tuple[GpuType, ...]
    times: array[float] = field(default_factory=lambda: array("d"))
    busy: dict[GpuType, array[float]] = field(default_factory=dict)
    """GPUs held by jobs, per type."""
    capacity: dict[GpuType, array[float]] = field(default_factory=dict)
    """GPUs in service (nodes up or draining), per type."""
    waiting: array[float] = field(default_factory=lambda: array("d"))
    """Jobs pending."""
    waiting_gpus: array[float] = field(default_factory=lambda: array("d"))
    """GPUs the pending jobs ask for."""

    def __post_init__(self) -> None:
        for t in self.types:
            self.busy.setdefault(t, array("d"))
            self.capacity.setdefault(t, array("d"))

    def add(
        self,
        at: float,
        busy: dict[GpuType, int],
        capacity: dict[GpuType, int],
        waiting: int,
        waiting_gpus: int,
    ) -> None:
        self.times.append(at)
        for t in self.types:
            self.busy[t].append(busy.get(t, 0))
            self.capacity[t].append(capacity.get(t, 0))
        self.waiting.append(waiting)
        self.waiting_gpus.append(waiting_gpus)

    def integral(self, values: Sequence[float], start: float, end: float) -> float:
        """The area under a series of this timeline over [start, end)."""
        return area(self.times, values, start, end)

    def series(self, values: Sequence[float]) -> Series:
        return Series(self.times, values)


def area(times: Sequence[float], values: Sequence[float], start: float, end: float) -> float:
    """The area under a step function over [start, end)."""
    total = 0.0
    for i, t in enumerate(times):
        nxt = times[i + 1] if i + 1 < len(times) else end
        lo, hi = max(t, start), min(nxt, end)
        if hi > lo:
            total += values[i] * (hi - lo)
    return total


def resample(series: Series, start: float, end: float, points: int) -> list[tuple[float, float]]:
    """The time-weighted mean of `series` over `points` equal buckets of [start, end), as
    (bucket start, mean) pairs; before the first sample the value is 0."""
    if points < 1 or end <= start:
        return []
    width = (end - start) / points
    edges = [start + k * width for k in range(points)] + [end]
    sums = [0.0] * points
    times, values = series.times, series.values
    for i, t in enumerate(times):
        value = values[i]
        lo, hi = max(t, start), min(times[i + 1] if i + 1 < len(times) else end, end)
        if hi <= lo or not value:
            continue
        first = min(max(int((lo - start) / width) - 1, 0), points - 1)
        for k in range(first, points):
            if edges[k] >= hi:
                break
            overlap = min(hi, edges[k + 1]) - max(lo, edges[k])
            if overlap > 0:
                sums[k] += value * overlap
    return [(edges[k], sums[k] / width) for k in range(points)]
