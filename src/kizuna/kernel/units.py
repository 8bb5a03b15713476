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


_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str | float) -> Seconds:
    """A duration as people write it: seconds as a number (also a bare "3600", where sbatch
    would read minutes); "90s", "45m", "12h", "30d", "2w" and sums such as "1d12h"; or
    Slurm's time formats "MM:SS", "HH:MM:SS", "D-HH", "D-HH:MM", "D-HH:MM:SS".
    Raises ValueError with the text when it is neither."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        if not 0 <= text < UNLIMITED:
            raise ValueError(f"a duration must be finite and not negative (got {text})")
        return Seconds(float(text))
    raw = str(text).strip().lower()
    problem = ValueError(
        f"{text!r} is not a duration: write seconds (3600), units (90m, 12h, 1d12h) "
        "or Slurm's D-HH:MM:SS"
    )
    if not raw:
        raise problem
    try:
        value = float(raw)
    except ValueError:
        pass
    else:
        return parse_duration(value)
    if raw[-1] in _UNIT_SECONDS:
        return _sum_of_units(raw, problem)
    return _slurm_time(raw, problem)


def _sum_of_units(raw: str, problem: ValueError) -> Seconds:
    total, number = 0.0, ""
    for ch in raw:
        if ch.isdigit() or ch == ".":
            number += ch
        elif ch in _UNIT_SECONDS and number:
            try:
                total += float(number) * _UNIT_SECONDS[ch]
            except ValueError:
                raise problem from None
            number = ""
        else:
            raise problem
    return Seconds(total)


def _slurm_time(raw: str, problem: ValueError) -> Seconds:
    days, with_days = 0, "-" in raw
    if with_days:
        head, _, raw = raw.partition("-")
        if not head.isdigit():
            raise problem
        days = int(head)
    parts = raw.split(":")
    if len(parts) > 3 or not all(p.isdigit() for p in parts):
        raise problem
    numbers = [int(p) for p in parts]
    if with_days:  # D-HH, D-HH:MM, D-HH:MM:SS
        numbers += [0] * (3 - len(numbers))
        hours, minutes, seconds = numbers
    elif len(numbers) == 1:  # MM
        hours, minutes, seconds = 0, numbers[0], 0
    elif len(numbers) == 2:  # MM:SS
        hours, (minutes, seconds) = 0, numbers
    else:
        hours, minutes, seconds = numbers
    return Seconds(float(days * 86400 + hours * 3600 + minutes * 60 + seconds))
