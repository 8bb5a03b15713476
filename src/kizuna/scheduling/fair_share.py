"""Fair-share arithmetic: decayed usage and Slurm's classic fair-share factor (ADR 0011).

F1 Usage decays exponentially: after one half-life, past usage counts half.
F2 A project's factor is 2^(-U/S): U its share of all decayed usage, S its share of all
   shares. A project that used exactly its share gets 0.5, an idle one 1.0, a heavy one -> 0.
"""

from __future__ import annotations

from collections.abc import Mapping

from kizuna.kernel.ids import ProjectId
from kizuna.kernel.units import Instant, Seconds
from kizuna.scheduling.model import Project, UsageRecord


def decay(elapsed: float, half_life: Seconds) -> float:
    """The weight of usage `elapsed` seconds old (F1); 1 without a positive half-life."""
    if half_life <= 0:
        return 1.0
    return float(0.5 ** (elapsed / half_life))


def decayed(record: UsageRecord, now: Instant, half_life: Seconds) -> float:
    """Usage decayed from `record.as_of` to `now` (F1); never grows when time runs backward."""
    elapsed = max(0.0, now - record.as_of)
    if half_life <= 0:
        return record.gpu_seconds
    return float(record.gpu_seconds * decay(elapsed, half_life))


def charge(
    record: UsageRecord, gpu_seconds: float, now: Instant, half_life: Seconds
) -> UsageRecord:
    """Add fresh usage at `now`, decaying what was there first (F1)."""
    return UsageRecord(decayed(record, now, half_life) + gpu_seconds, now)


def factors(
    projects: Mapping[ProjectId, Project], now: Instant, half_life: Seconds
) -> dict[ProjectId, float]:
    """The fair-share factor of every project, in [0, 1] (F2)."""
    usage = {pid: decayed(p.usage, now, half_life) for pid, p in projects.items()}
    total_usage = sum(usage.values())
    total_shares = sum(max(p.shares, 0.0) for p in projects.values())
    out = {}
    for pid, p in projects.items():
        share = max(p.shares, 0.0) / total_shares if total_shares > 0 else 0.0
        used = usage[pid] / total_usage if total_usage > 0 else 0.0
        if share <= 0:
            out[pid] = 0.0
        else:
            out[pid] = float(2.0 ** (-used / share))
    return out
