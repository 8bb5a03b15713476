"""The event queue: (time, priority, sequence) order, so every replay is reproducible."""

from __future__ import annotations

import pytest

from kizuna.kernel.units import Instant
from kizuna.simulation.events import NORMAL, URGENT, EventQueue


def drain(queue: EventQueue[str]) -> list[str]:
    return [queue.pop().payload for _ in range(len(queue))]


def test_earlier_time_first() -> None:
    queue: EventQueue[str] = EventQueue()
    queue.push(Instant(5.0), "late")
    queue.push(Instant(1.0), "early")
    assert drain(queue) == ["early", "late"]


def test_ties_in_time_go_by_priority_then_by_push_order() -> None:
    queue: EventQueue[str] = EventQueue()
    queue.push(Instant(5.0), "arrival a", NORMAL)
    queue.push(Instant(5.0), "release", URGENT)
    queue.push(Instant(5.0), "arrival b", NORMAL)
    queue.push(Instant(5.0), "arrival c", NORMAL)
    assert drain(queue) == ["release", "arrival a", "arrival b", "arrival c"]


def test_payloads_are_never_compared() -> None:
    queue: EventQueue[dict[str, int]] = EventQueue()
    queue.push(Instant(1.0), {"b": 2})
    queue.push(Instant(1.0), {"a": 1})  # dicts cannot be ordered: only the sequence decides
    assert [queue.pop().payload for _ in range(2)] == [{"b": 2}, {"a": 1}]


def test_pop_due_takes_everything_up_to_the_instant_in_order() -> None:
    queue: EventQueue[str] = EventQueue()
    for at, name in [(3.0, "c"), (1.0, "a"), (2.0, "b"), (2.0, "b2"), (4.0, "d")]:
        queue.push(Instant(at), name)
    assert queue.pop_due(Instant(2.0)) == ["a", "b", "b2"]
    assert queue.pop_due(Instant(3.5)) == ["c"]
    assert len(queue) == 1


def test_pop_due_orders_an_instant_by_priority_then_push_order() -> None:
    queue: EventQueue[str] = EventQueue()
    queue.push(Instant(2.0), "b", priority=1)
    queue.push(Instant(1.0), "a")
    queue.push(Instant(2.0), "b0", priority=0)
    queue.push(Instant(3.0), "c")
    assert queue.pop_due(Instant(2.0)) == ["a", "b0", "b"]
    assert queue.pop_due(Instant(2.5)) == []
    assert queue.pop_due(Instant(9.0)) == ["c"]
    assert len(queue) == 0


def test_peek_leaves_the_event_and_an_empty_queue_says_so() -> None:
    queue: EventQueue[str] = EventQueue()
    assert queue.peek() is None
    queue.push(Instant(7.0), "x")
    peeked = queue.peek()
    assert peeked is not None and peeked.time == 7.0
    assert len(queue) == 1
    queue.pop()
    with pytest.raises(IndexError):
        queue.pop()
