"""Units and their formatting: the durations and clock times every pending-job reason prints."""

from __future__ import annotations

import math

import pytest

from kizuna.kernel.units import (
    FOREVER,
    HOUR,
    MINUTE,
    format_clock,
    format_duration,
    gpu_hours,
    gpu_seconds,
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0.0, "0s", id="zero"),
        pytest.param(45.0, "45s", id="seconds"),
        pytest.param(44.6, "45s", id="rounds-seconds"),
        pytest.param(59.6, "1m", id="rounds-up-to-a-minute"),
        pytest.param(12 * 60.0, "12m", id="minutes"),
        pytest.param(12 * 60.0 + 59, "12m", id="drops-seconds-under-an-hour"),
        pytest.param(2 * 3600.0, "2h", id="whole-hours"),
        pytest.param(2 * 3600.0 + 10 * 60, "2h 10m", id="hours-and-minutes"),
        pytest.param(86400.0, "1d", id="whole-day"),
        pytest.param(3 * 86400.0 + 4 * 3600, "3d 4h", id="days-and-hours"),
        pytest.param(86400.0 + 59 * 60, "1d", id="drops-minutes-over-a-day"),
        pytest.param(-30.0, "0s", id="negative-is-zero"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("at", "text"),
    [
        pytest.param(0.0, "00:00", id="epoch"),
        pytest.param(5000.0, "01:23", id="minutes-floored"),
        pytest.param(23 * 3600.0 + 59 * 60 + 59, "23:59", id="last-minute-of-day"),
        pytest.param(86400.0 + 3600, "01:00", id="wraps-at-midnight"),
        pytest.param(1_700_000_000.0, "22:13", id="unix-timestamp-utc"),
    ],
)
def test_format_clock(at: float, text: str) -> None:
    assert format_clock(at) == text


@pytest.mark.parametrize(
    ("gpus", "duration", "work", "hours"),
    [
        pytest.param(8, 3600.0, 28_800.0, 8.0, id="eight-gpus-one-hour"),
        pytest.param(1, 90.0, 90.0, 0.025, id="one-gpu-ninety-seconds"),
        pytest.param(0, 3600.0, 0.0, 0.0, id="no-gpus"),
    ],
)
def test_gpu_seconds_and_hours(gpus: int, duration: float, work: float, hours: float) -> None:
    assert gpu_seconds(gpus, duration) == work
    assert gpu_hours(work) == pytest.approx(hours)


def test_constants() -> None:
    assert (MINUTE, HOUR) == (60.0, 3600.0)
    assert math.isinf(FOREVER)
    assert FOREVER > 0
