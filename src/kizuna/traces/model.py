"""Kizuna's canonical trace: one row per job, whatever format it was read from.

A trace row says what a user asked for (GPUs, GPU type, walltime, priority class) and what
really happened (how long the job ran). The simulator turns rows into jobs; the live service
exports its job history in the same shape (CSV or JSON Lines, see `canonical.py`).

Below the model: what every reader shares, checking a row (`record`, `RowError`), collecting
records and bad rows into a `Trace` (`TraceBuilder`) and reading delimited text (`CsvFile`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TextIO

from kizuna.kernel.errors import InvalidRequest

FIELDS: tuple[str, ...] = (
    "id",
    "project",
    "submit",
    "gpus",
    "gpu_type",
    "duration",
    "walltime",
    "priority",
)
"""The canonical columns, in file order."""


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One job of a trace. Times are seconds; `submit` counts from the trace's own origin."""

    id: str
    project: str
    """The tenant that submitted it: a Philly or Helios virtual cluster, a PAI user, a project."""
    submit: float
    gpus: int
    duration: float
    """How long it really ran on its GPUs (the scheduler never sees this)."""
    gpu_type: str | None = None
    """None: any type; the cluster spec's default type is used."""
    walltime: float | None = None
    """The time limit the user asked for; None: unknown (the simulator derives one)."""
    priority: str = "normal"
    """A priority class name: low, normal or high."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A row that could not be read, and why: `line` is 1-based, as an editor shows it."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class BadRows(StrEnum):
    """What a reader does with a row it cannot read."""

    SKIP = "skip"
    """Leave it out and report it in `Trace.problems`."""
    REJECT = "reject"
    """Refuse the whole trace: raise `InvalidRequest` listing every bad row."""


@dataclass(frozen=True)
class Trace:
    """The rows read from one source, in submit order (ties keep file order)."""

    records: tuple[TraceRecord, ...]
    source: str
    """The format it was read from: kizuna-csv, kizuna-jsonl, philly, gavel, tiresias,
    helios, pai, synth."""
    problems: tuple[RowProblem, ...] = ()
    """Rows skipped as bad (only with `BadRows.SKIP`)."""
    filtered: int = 0
    """Rows left out on purpose, not as errors (CPU-only jobs of Helios or PAI), counted."""


PRIORITIES: tuple[str, ...] = ("low", "normal", "high")
"""The priority classes a trace row may name."""

Report = Callable[[int, str], None]
"""Hears of a bad row: its line and what is wrong with it."""

LISTED = 20
"""How many bad rows a rejection lists before it counts the rest."""


class RowError(ValueError):
    """Why one row cannot become a record (the reader adds the line)."""


def record(
    id: str,
    project: str,
    submit: float,
    gpus: int,
    duration: float,
    gpu_type: str | None = None,
    walltime: float | None = None,
    priority: str = "normal",
) -> TraceRecord:
    """A record, once it holds what every trace row must; raises `RowError` naming the field."""
    if not id:
        raise RowError("the id is empty")
    if not project:
        raise RowError("the project is empty")
    if submit < 0:
        raise RowError(f"submit cannot be negative, got {submit:g}")
    if gpus < 1:
        raise RowError(f"gpus must be at least 1, got {gpus}")
    if duration < 0:
        raise RowError(f"duration cannot be negative, got {duration:g}")
    if walltime is not None and walltime <= 0:
        raise RowError(f"walltime must be positive, got {walltime:g}")
    if priority not in PRIORITIES:
        raise RowError(f"priority must be one of {', '.join(PRIORITIES)}, got {priority!r}")
    return TraceRecord(id, project, submit, gpus, duration, gpu_type, walltime, priority)


def number(name: str, cell: str) -> float:
    """A finite number read from a cell; raises `RowError` naming the field."""
    value = text(name, cell)
    try:
        result = float(value)
    except ValueError:
        raise RowError(f"{name} is not a number: {value!r}") from None
    if not math.isfinite(result):
        raise RowError(f"{name} is not a finite number: {value!r}")
    return result


def whole(name: str, cell: str) -> int:
    """A whole number read from a cell; raises `RowError` naming the field."""
    value = text(name, cell)
    try:
        return int(value)
    except ValueError:
        raise RowError(f"{name} is not a whole number: {value!r}") from None


def date_time(name: str, cell: str) -> datetime:
    """A `YYYY-MM-DD HH:MM:SS` cell, without a time zone; raises `RowError` naming the field."""
    value = text(name, cell)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise RowError(f"{name} is not a date and time (YYYY-MM-DD HH:MM:SS): {value!r}") from None
    if moment.tzinfo is not None:
        raise RowError(f"{name} has a time zone, the trace's other times have none: {value!r}")
    return moment


def text(name: str, cell: str) -> str:
    """A cell that must not be empty, stripped; raises `RowError` naming the field."""
    value = cell.strip()
    if not value:
        raise RowError(f"missing {name}")
    return value


class TraceBuilder:
    """Collects the records and bad rows of one file, then makes the `Trace` (or refuses it)."""

    def __init__(self, path: Path, source: str, on_bad: BadRows) -> None:
        self.path = path
        self.source = source
        self.on_bad = BadRows(on_bad)
        self._records: list[TraceRecord] = []
        self._problems: list[RowProblem] = []
        self._lines: dict[str, int] = {}
        self._filtered = 0

    def add(self, line: int, item: TraceRecord) -> None:
        """Keep a record read on `line`, unless an earlier row already used its id."""
        first = self._lines.setdefault(item.id, line)
        if first != line:
            self.bad(line, f"id {item.id!r} is already used on line {first}")
        else:
            self._records.append(item)

    def bad(self, line: int, message: str) -> None:
        """Report the row on `line` as bad."""
        self._problems.append(RowProblem(line, message))

    def leave_out(self) -> None:
        """Count a row left out on purpose (a CPU job)."""
        self._filtered += 1

    def finish(self) -> Trace:
        """The trace in submit order; raises `InvalidRequest` on bad rows under `REJECT`."""
        problems = sorted(self._problems, key=lambda p: p.line)
        if problems and self.on_bad is BadRows.REJECT:
            raise InvalidRequest(rejection(self.path, problems))
        records = sorted(self._records, key=lambda r: r.submit)
        return Trace(tuple(records), self.source, tuple(problems), self._filtered)


def rejection(path: Path, problems: Sequence[RowProblem]) -> list[str]:
    """The messages of a refused trace: the first `LISTED` bad rows, then how many more."""
    listed = [f"{path}: {p}" for p in problems[:LISTED]]
    rest = len(problems) - LISTED
    if rest > 0:
        listed.append(f"... and {rest} more bad rows")
    return listed


@contextmanager
def opened(path: Path) -> Iterator[TextIO]:
    """`path` open as UTF-8 text (a byte-order mark is dropped); unreadable: `InvalidRequest`."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            yield file
    except UnicodeDecodeError as error:
        raise InvalidRequest([f"{path} is not UTF-8 text: {error.reason}"]) from None
    except OSError as error:
        raise InvalidRequest([f"cannot read {path}: {error.strerror or error}"]) from None


def ends_mid_row(path: Path) -> bool:
    """Whether the file's last line lacks its line break (the file may have been cut)."""
    with path.open("rb") as file:
        if file.seek(0, 2) == 0:
            return False
        file.seek(-1, 2)
        return file.read(1) not in (b"\n", b"\r")


class CsvFile:
    """The rows of a delimited text file with their 1-based line numbers.

    Blank lines are skipped. A row with the wrong number of columns, or that the CSV rules
    cannot read (an unclosed quote), is reported and not yielded.
    """

    def __init__(self, path: Path, file: TextIO, delimiter: str = ",", quoted: bool = True) -> None:
        self.path = path
        self._reader = (
            csv.reader(file, delimiter=delimiter, strict=True)
            if quoted
            else csv.reader(file, delimiter=delimiter, quoting=csv.QUOTE_NONE, strict=True)
        )
        self._cut = ends_mid_row(path)
        self._line = 0

    def header(self, required: Sequence[str]) -> dict[str, int]:
        """The first line as column positions; raises `InvalidRequest` if it lacks `required`."""
        cells = next(self._reader, None)
        self._line = self._reader.line_num
        if cells is None:
            raise InvalidRequest([f"{self.path} is empty; expected a header: {','.join(required)}"])
        columns = {cell.strip(): k for k, cell in enumerate(cells)}
        if len(columns) < len(cells):
            raise InvalidRequest([f"{self.path}: the header repeats a column: {','.join(cells)}"])
        missing = [name for name in required if name not in columns]
        if missing:
            raise InvalidRequest(
                [f"{self.path}: the header lacks {', '.join(missing)} (found: {','.join(cells)})"]
            )
        return columns

    def rows(self, width: int, report: Report) -> Iterator[tuple[int, list[str]]]:
        """(line, cells) of every row that has `width` cells; `report` hears of the others."""
        pending: tuple[int, list[str]] | None = None
        for line, cells in self._records(report):
            if pending is not None:
                yield from self._checked(*pending, width, report, last=False)
            pending = (line, cells)
        if pending is not None:
            yield from self._checked(*pending, width, report, last=True)

    def _records(self, report: Report) -> Iterator[tuple[int, list[str]]]:
        while True:
            start = self._line + 1
            try:
                cells = next(self._reader)
            except StopIteration:
                return
            except csv.Error as error:
                reason = str(error)
                if reason == "unexpected end of data":
                    reason = "the file ends inside a quoted field"
                report(start, f"cannot be read as CSV: {reason}")
                continue
            finally:
                self._line = self._reader.line_num
            if cells:
                yield start, cells

    def _checked(
        self, line: int, cells: list[str], width: int, report: Report, *, last: bool
    ) -> Iterator[tuple[int, list[str]]]:
        if len(cells) == width:
            yield line, cells
            return
        cut = "the file ends mid-row: " if last and self._cut and len(cells) < width else ""
        report(line, f"{cut}expected {width} columns, found {len(cells)}")
