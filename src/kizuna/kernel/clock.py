"""The clock seen by the core: a protocol only. Implementations live at the edges (ADR 0003)."""

from typing import Protocol

from kizuna.kernel.units import Instant


class Clock(Protocol):
    """Tells the time. The live service passes a system clock, the simulator a simulated one."""

    def now(self) -> Instant: ...
