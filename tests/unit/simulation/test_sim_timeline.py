"""The replay's timeline: samples as step functions, their areas, and the resampled curves
reports draw."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import pytest

from kizuna.kernel.ids import GpuType
from kizuna.simulation.timeline import Series, Timeline, resample

H100, A100 = GpuType("H100"), GpuType("A100")


def test_add_keeps_one_value_per_type_and_sample() -> None:
    """A type a sample does not mention counts 0 for that sample."""
    timeline = Timeline((H100, A100))
    timeline.add(0.0, {H100: 8}, {H100: 16, A100: 8}, 3, 24)
    timeline.add(5.0, {A100: 4}, {H100: 16}, 1, 8)
    assert list(timeline.times) == [0.0, 5.0]
    assert list(timeline.busy[H100]) == [8.0, 0.0]
    assert list(timeline.busy[A100]) == [0.0, 4.0]
    assert list(timeline.capacity[H100]) == [16.0, 16.0]
    assert list(timeline.capacity[A100]) == [8.0, 0.0]
    assert (list(timeline.waiting), list(timeline.waiting_gpus)) == ([3.0, 1.0], [24.0, 8.0])


def test_every_type_has_its_series_from_the_start() -> None:
    timeline = Timeline((H100,))
    assert (list(timeline.busy[H100]), list(timeline.capacity[H100])) == ([], [])


def test_series_pairs_the_times_with_values() -> None:
    timeline = Timeline((H100,))
    timeline.add(1.0, {H100: 2}, {H100: 8}, 0, 0)
    series = timeline.series(timeline.busy[H100])
    assert (list(series.times), list(series.values)) == ([1.0], [2.0])


@pytest.fixture
def steps() -> Timeline:
    """H100 busy: 2 over [0, 10), 4 over [10, 30), 1 from 30 on."""
    timeline = Timeline((H100,))
    for at, busy in ((0.0, 2), (10.0, 4), (30.0, 1)):
        timeline.add(at, {H100: busy}, {H100: 8}, 0, 0)
    return timeline


@pytest.mark.parametrize(
    ("start", "end", "area"),
    [
        pytest.param(0.0, 40.0, 110.0, id="whole"),  # 2 x 10 + 4 x 20 + 1 x 10
        pytest.param(5.0, 15.0, 30.0, id="across-a-step"),  # 2 x 5 + 4 x 5
        pytest.param(12.0, 18.0, 24.0, id="inside-a-step"),  # 4 x 6
        pytest.param(-10.0, 10.0, 20.0, id="zero-before-the-first-sample"),  # 0 x 10 + 2 x 10
        pytest.param(-10.0, -5.0, 0.0, id="all-before"),
        pytest.param(30.0, 100.0, 70.0, id="last-value-holds-to-the-end"),  # 1 x 70
        pytest.param(20.0, 20.0, 0.0, id="empty-span"),
    ],
)
def test_integral_is_the_area_under_the_steps(
    steps: Timeline, start: float, end: float, area: float
) -> None:
    assert steps.integral(steps.busy[H100], start, end) == pytest.approx(area)


def test_integral_of_an_empty_timeline_is_zero() -> None:
    timeline = Timeline((H100,))
    assert timeline.integral(timeline.busy[H100], 0.0, 100.0) == 0.0


def test_resample_is_the_time_weighted_mean_per_bucket() -> None:
    """2 over [0, 10), 4 from 10: four 5-second buckets of [0, 20)."""
    series = Series([0.0, 10.0], [2.0, 4.0])
    assert resample(series, 0.0, 20.0, 4) == [(0.0, 2.0), (5.0, 2.0), (10.0, 4.0), (15.0, 4.0)]


def test_a_bucket_averages_the_steps_inside_it() -> None:
    """[0, 10) in one bucket: 2 for 4 s, 7 for 6 s -> (8 + 42) / 10 = 5."""
    assert resample(Series([0.0, 4.0], [2.0, 7.0]), 0.0, 10.0, 1) == [(0.0, 5.0)]


def test_a_step_spanning_several_buckets_is_spread_by_its_time_in_each() -> None:
    """6 over [3, 13), else 0; buckets of 5 s: [0, 5) holds 2 s of it -> 12 / 5 = 2.4;
    [5, 10) all 5 s -> 6; [10, 15) 3 s -> 18 / 5 = 3.6; [15, 20) none -> 0."""
    series = Series([0.0, 3.0, 13.0], [0.0, 6.0, 0.0])
    points = resample(series, 0.0, 20.0, 4)
    assert [t for t, _ in points] == [0.0, 5.0, 10.0, 15.0]
    assert [mean for _, mean in points] == pytest.approx([2.4, 6.0, 3.6, 0.0])


def test_a_short_burst_moves_its_bucket_by_its_weight() -> None:
    """10 for 1 s in a 10 s bucket: a mean of 1, neither lost nor shown as 10."""
    series = Series([0.0, 1.0, 2.0], [0.0, 10.0, 0.0])
    assert resample(series, 0.0, 10.0, 1) == [(0.0, 1.0)]


def test_before_the_first_sample_the_value_is_zero() -> None:
    """4 from 2.5 on: [0, 5) has 2.5 s of it -> 10 / 5 = 2; [5, 10) -> 4."""
    assert resample(Series([2.5], [4.0]), 0.0, 10.0, 2) == [(0.0, 2.0), (5.0, 4.0)]
    assert resample(Series([5.0], [10.0]), 0.0, 10.0, 2) == [(0.0, 0.0), (5.0, 10.0)]


def test_resample_starts_where_asked() -> None:
    """Samples before `start` still hold into the window; samples after `end` are ignored."""
    series = Series([0.0, 20.0], [3.0, 100.0])
    assert resample(series, 10.0, 20.0, 2) == [(10.0, 3.0), (15.0, 3.0)]


def test_resample_keeps_the_area_with_uneven_bucket_edges() -> None:
    """7 buckets of 1/7 s: edges are not exact in floating point, yet the buckets' areas add
    up to the series' area: 3 x 0.25 + 1 x 0.37 + 5 x 0.28 = 2.52."""
    series = Series([0.1, 0.35, 0.72], [3.0, 1.0, 5.0])
    points = resample(series, 0.0, 1.0, 7)
    assert [t for t, _ in points] == pytest.approx([k / 7 for k in range(7)])
    assert sum(mean / 7 for _, mean in points) == pytest.approx(2.52)
    assert points[0][1] == pytest.approx(3 * (1 / 7 - 0.1) * 7)  # 0.1 to 1/7 at 3


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise TimeoutError in the test if its body runs longer than `seconds`."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs POSIX interval timers")
def test_resample_ends_for_a_window_that_does_not_start_at_zero() -> None:
    """A report's view (400 buckets) of one hour starting 128704.3 s into a trace, 8 GPUs
    busy throughout: every bucket's mean is 8. (Rounding once put a sample exactly on a
    bucket edge that the bucket index placed one bucket early, and the loop never ended.)"""
    with time_limit(0.5):
        points = resample(Series([128704.3], [8.0]), 128704.3, 128704.3 + 3600.0, 400)
    assert [mean for _, mean in points] == pytest.approx([8.0] * 400)


@pytest.mark.parametrize(
    ("start", "end", "points"),
    [
        pytest.param(0.0, 10.0, 0, id="no-points"),
        pytest.param(0.0, 10.0, -1, id="negative-points"),
        pytest.param(5.0, 5.0, 4, id="empty-span"),
        pytest.param(10.0, 5.0, 4, id="reversed-span"),
    ],
)
def test_resample_of_nothing_is_empty(start: float, end: float, points: int) -> None:
    assert resample(Series([0.0], [1.0]), start, end, points) == []


def test_resample_of_no_samples_is_zero() -> None:
    assert resample(Series([], []), 0.0, 4.0, 2) == [(0.0, 0.0), (2.0, 0.0)]
