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
    """A heap of events; `sequence` numbers are handed out in push order."""

    def __init__(self) -> None:
        self._heap: list[Event[T]] = []
        self._sequence = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, time: Instant, payload: T, priority: int = NORMAL) -> Event[T]:
        event = Event(time, priority, next(self._sequence), payload)
        heapq.heappush(self._heap, event)
        return event

    def peek(self) -> Event[T] | None:
        """The next event, left in the queue; None when the queue is empty."""
        return self._heap[0] if self._heap else None

    def pop(self) -> Event[T]:
        """Remove and return the next event; IndexError when the queue is empty."""
        return heapq.heappop(self._heap)

    def pop_due(self, time: Instant) -> list[Event[T]]:
        """Remove and return, in order, every event at or before `time`."""
        due = []
        while self._heap and self._heap[0].time <= time:
            due.append(heapq.heappop(self._heap))
        return due
