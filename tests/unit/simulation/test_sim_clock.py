"""SimClock: the replay's time; it starts where told and never goes back."""

from __future__ import annotations

import pytest

from kizuna.kernel.clock import Clock
from kizuna.kernel.units import Instant
from kizuna.simulation import SimClock


def test_starts_at_the_given_instant_and_moves_forward() -> None:
    clock: Clock = SimClock(Instant(100.0))
    assert clock.now() == 100.0
    assert isinstance(clock, SimClock)
    clock.advance_to(Instant(250.5))
    assert clock.now() == 250.5


def test_staying_at_the_same_instant_is_allowed() -> None:
    clock = SimClock(Instant(10.0))
    clock.advance_to(Instant(10.0))
    assert clock.now() == 10.0


def test_never_goes_back() -> None:
    clock = SimClock(Instant(10.0))
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance_to(Instant(9.999))
    assert clock.now() == 10.0


def test_defaults_to_the_simulation_origin() -> None:
    assert SimClock().now() == 0.0
