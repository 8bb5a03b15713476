"""The ledger's arithmetic (ADR 0023), in integer GPU-milliseconds so no sum ever rounds.

L1. A run is admitted with a hold of GPUs x walltime on one award whose available balance
    covers it, in the transaction that admits it.
L2. A run's end writes one usage record: GPUs x the time it held them, at most its walltime;
    so a charge never exceeds its hold, and the hold is released by the same transaction.
L3. available = granted - charged - held, derived from the usage records and the holds of
    open runs; by L1 and L2 it never goes below zero.
L4. Charging a run that already has its usage record changes nothing (retries, crashes).

Instants are seconds since the epoch (floats), as everywhere in the pure core.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MS_PER_SECOND = 1000
SECONDS_PER_DAY = 86_400


def hold_ms(gpus: int, walltime_s: int) -> int:
    """L1: what a run may use at most."""
    return gpus * walltime_s * MS_PER_SECOND


def charge_ms(gpus: int, started: float, ended: float, walltime_s: int) -> int:
    """L2: GPUs x the run's length in whole milliseconds, capped at its walltime."""
    length = max(0, round((ended - started) * MS_PER_SECOND))
    return gpus * min(length, walltime_s * MS_PER_SECOND)


@dataclass(frozen=True)
class Balance:
    """An award's account (L3)."""

    granted_ms: int
    charged_ms: int
    held_ms: int

    @property
    def available_ms(self) -> int:
        return self.granted_ms - self.charged_ms - self.held_ms

    def covers(self, need_ms: int) -> bool:
        return need_ms <= self.available_ms


@dataclass(frozen=True)
class Funds:
    """One award a run could be charged to: its id, when it ends, and its balance."""

    award: str
    ends_at: float
    balance: Balance


def pick(funds: Sequence[Funds], need_ms: int) -> Funds | None:
    """L1: the award to hold `need_ms` on: of those that cover it alone, the one that ends
    first (its GPU-hours lapse soonest), then by id; None when none covers it."""
    covering = [f for f in funds if f.balance.covers(need_ms)]
    return min(covering, key=lambda f: (f.ends_at, f.award), default=None)


def burn_rate(charges: Iterable[tuple[float, float, int]], now: float, window_s: float) -> float:
    """GPU-milliseconds per second spent over the `window_s` seconds before `now`, from
    (start, end, GPU-ms) of each run (an open run: its end is `now`), the part of each run
    inside the window counted pro rata."""
    if window_s <= 0:
        raise ValueError("the window must be positive")
    since = now - window_s
    spent = 0.0
    for start, end, gpu_ms in charges:
        length = end - start
        if length <= 0:  # an instant: inside the closed window or not
            spent += gpu_ms if since <= end <= now else 0
            continue
        inside = min(end, now) - max(start, since)
        if inside > 0:
            spent += gpu_ms * min(1.0, inside / length)
    return spent / window_s


def runs_out(available_ms: int, rate_ms_per_s: float, now: float) -> float | None:
    """The instant the award is spent at `rate`; None when nothing is being spent."""
    if rate_ms_per_s <= 0:
        return None
    return now + max(0, available_ms) / rate_ms_per_s
