"""Lazy views of a cycle's results: worked out on first read, so a loop that never reads
every reason does not pay for them (ADR 0008)."""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterator, Mapping, Sequence
from typing import overload

from kizuna.kernel.ids import JobId
from kizuna.scheduling.decisions import Reason
from kizuna.scheduling.model import Job


class LazyReasons(Mapping[JobId, Reason]):
    """The cycle's reasons; those of closed types' tails are written on first access."""

    def __init__(self, reasons: dict[JobId, Reason], fill: Callable[[], None]) -> None:
        self._reasons = reasons
        self._fill: Callable[[], None] | None = fill

    def _done(self) -> dict[JobId, Reason]:
        if self._fill is not None:
            self._fill()
            self._fill = None
        return self._reasons

    def __getitem__(self, job: JobId) -> Reason:
        return self._done()[job]

    def items(self) -> ItemsView[JobId, Reason]:
        return self._done().items()

    def __iter__(self) -> Iterator[JobId]:
        return iter(self._done())

    def __len__(self) -> int:
        return len(self._done())


class LazyOrder(Sequence[JobId]):
    """The pending jobs in the order the cycle considered them, worked out on first use."""

    def __init__(self, order: Callable[[], list[Job]]) -> None:
        self._order: Callable[[], list[Job]] | None = order
        self._ids: tuple[JobId, ...] = ()

    def _done(self) -> tuple[JobId, ...]:
        if self._order is not None:
            self._ids = tuple(j.id for j in self._order())
            self._order = None
        return self._ids

    @overload
    def __getitem__(self, index: int) -> JobId: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[JobId]: ...
    def __getitem__(self, index: int | slice) -> JobId | Sequence[JobId]:
        return self._done()[index]

    def __len__(self) -> int:
        return len(self._done())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return self._done() == tuple(other)

    __hash__ = None  # type: ignore[assignment]
