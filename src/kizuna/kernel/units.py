"""Units of time and GPU work. Time is a parameter (ADR 0003): nothing here reads a clock."""

from typing import NewType

Instant = NewType("Instant", float)
"""Seconds since the Unix epoch (or since a simulation's origin)."""

Seconds = NewType("Seconds", float)
"""A duration."""

GpuSeconds = NewType("GpuSeconds", float)
"""GPU work: GPUs x seconds. Award budgets and usage are kept in this unit."""

MINUTE = Seconds(60.0)
HOUR = Seconds(3600.0)
FOREVER = Instant(float("inf"))
UNLIMITED = float("inf")
"""No limit: a quota, budget or room that nothing refuses."""


def gpu_seconds(gpus: int, duration: float) -> GpuSeconds:
    """The work of `gpus` GPUs held for `duration` seconds."""
    return GpuSeconds(gpus * duration)


def gpu_hours(work: float) -> float:
    """GPU-seconds expressed in GPU-hours, the unit awards are written in."""
    return work / HOUR


def format_duration(seconds: float) -> str:
    """A short human duration: "45s", "12m", "2h 10m", "3d 4h"."""
    total = round(max(seconds, 0.0))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def format_clock(at: float) -> str:
    """The UTC wall-clock time of an instant as HH:MM, computed without reading any clock."""
    minutes = int(at // 60) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
