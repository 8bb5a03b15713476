"""The simulator's event queue, ordered by (time, priority, sequence) as in SimPy.

Events at one instant come out by priority (lower first), then in the order they were
scheduled. The order never depends on heap internals, payloads or hashing, so a replay gives
the same sequence of events every time it runs.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from kizuna.kernel.units import Instant

T = TypeVar("T")

URGENT = 0
"""Priority of releases (job ends, preemption stops): GPUs come back before anything else."""
NORMAL = 1
"""Priority of everything else, such as job arrivals."""


@dataclass(frozen=True, order=True, slots=True)
class Event(Generic[T]):
    """Something that happens at `time`; only (time, priority, sequence) decide the order."""

    time: Instant
    priority: int
    sequence: int
    payload: T = field(compare=False)


class EventQueue(Generic[T]):
    """A heap of events; `sequence` numbers are handed out in push order. The heap holds
    plain tuples (time, priority, sequence, payload), compared in C; sequences are unique,
    so payloads are never compared."""

    def __init__(self) -> None:
        self._heap: list[tuple[Instant, int, int, T]] = []
        self._sequence = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, time: Instant, payload: T, priority: int = NORMAL) -> None:
        """Schedule `payload` at `time` (no `Event` made: `peek` and `pop` make one)."""
        heapq.heappush(self._heap, (time, priority, next(self._sequence), payload))

    def peek(self) -> Event[T] | None:
        """The next event, left in the queue; None when the queue is empty."""
        return Event(*self._heap[0]) if self._heap else None

    def next_time(self) -> Instant | None:
        """When the next event is due; None when the queue is empty."""
        return self._heap[0][0] if self._heap else None

    def pop(self) -> Event[T]:
        """Remove and return the next event; IndexError when the queue is empty."""
        return Event(*heapq.heappop(self._heap))

    def pop_due(self, time: Instant) -> list[T]:
        """Remove every event at or before `time` and return their payloads, in order (no
        `Event` made for each: the replay's loop only reads what happens)."""
        due = []
        heap, pop = self._heap, heapq.heappop
        while heap and heap[0][0] <= time:
            due.append(pop(heap)[3])
        return due
