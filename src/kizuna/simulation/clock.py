"""Simulated time: an object the event loop moves, never the wall clock (ADR 0003)."""

from __future__ import annotations

from kizuna.kernel.units import Instant


class SimClock:
    """A `kizuna.kernel.clock.Clock` whose time only moves forward, by `advance_to`.

    The scheduling core is given `now` as a parameter; in a replay that instant comes from this
    clock, so the very same core code runs against simulated time (SimPy's `Environment.now`).
    """

    __slots__ = ("_now",)

    def __init__(self, start: Instant = Instant(0.0)) -> None:
        self._now = start

    def now(self) -> Instant:
        return self._now

    def advance_to(self, at: Instant) -> None:
        """Move time to `at`; staying at the same instant is allowed, going back is not."""
        if at < self._now:
            raise ValueError(f"simulated time cannot go back from {self._now:g} s to {at:g} s")
        self._now = at
