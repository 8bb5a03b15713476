"""Kizuna's canonical trace files: CSV with the `FIELDS` header, or JSON Lines.

CSV: the header names the columns (any order; `gpu_type`, `walltime` and `priority` may be
left out); an empty `gpu_type` or `walltime` cell means None, an empty `priority` "normal".
JSON Lines: one object per line with the same keys; optional keys may be absent or null.
Writing then reading a file gives back the very same records: numbers are written in the
shortest form that reads back to the same float.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TextIO

from kizuna.kernel.errors import InvalidRequest
from kizuna.traces.model import (
    FIELDS,
    BadRows,
    CsvFile,
    RowError,
    Trace,
    TraceBuilder,
    TraceRecord,
    number,
    opened,
    record,
    text,
    whole,
)

REQUIRED: tuple[str, ...] = ("id", "project", "submit", "gpus", "duration")
"""The columns every canonical file has; the others are optional."""


def read_csv(path: Path, *, on_bad: BadRows = BadRows.REJECT) -> Trace:
    """The records of a canonical CSV file."""
    builder = TraceBuilder(path, "kizuna-csv", on_bad)
    with opened(path) as file:
        table = CsvFile(path, file)
        columns = table.header(REQUIRED)
        _check_columns(path, columns)
        for line, cells in table.rows(len(columns), builder.bad):
            try:
                builder.add(line, _from_cells({name: cells[k] for name, k in columns.items()}))
            except RowError as error:
                builder.bad(line, str(error))
    return builder.finish()


def read_jsonl(path: Path, *, on_bad: BadRows = BadRows.REJECT) -> Trace:
    """The records of a canonical JSON Lines file; blank lines are skipped."""
    builder = TraceBuilder(path, "kizuna-jsonl", on_bad)
    with opened(path) as file:
        for line, raw in enumerate(file, start=1):
            if not raw.strip():
                continue
            try:
                builder.add(line, _from_json(raw))
            except RowError as error:
                cut = "" if raw.endswith(("\n", "\r")) else "the file ends mid-row: "
                builder.bad(line, f"{cut}{error}")
    return builder.finish()


def write_trace(trace: Trace | Iterable[TraceRecord], path: Path) -> int:
    """Write records as canonical CSV (`.csv`) or JSON Lines (`.jsonl`), one at a time, so a
    generator of records is never held in memory; returns how many were written."""
    writers: dict[str, Callable[[Iterable[TraceRecord], TextIO], int]] = {
        ".csv": _write_csv,
        ".jsonl": _write_jsonl,
    }
    writer = writers.get(path.suffix.lower())
    if writer is None:
        raise InvalidRequest(
            [f"cannot tell how to write {path}: name it .csv or .jsonl (got {path.suffix!r})"]
        )
    records = trace.records if isinstance(trace, Trace) else trace
    try:
        with path.open("w", encoding="utf-8", newline="") as file:
            return writer(records, file)
    except OSError as error:
        raise InvalidRequest([f"cannot write {path}: {error.strerror or error}"]) from None


def _check_columns(path: Path, columns: Mapping[str, int]) -> None:
    unknown = [name for name in columns if name not in FIELDS]
    if unknown:
        raise InvalidRequest(
            [
                f"{path}: unknown column(s) {', '.join(unknown)}; "
                f"the canonical columns are {','.join(FIELDS)}"
            ]
        )


def _from_cells(cells: Mapping[str, str]) -> TraceRecord:
    gpu_type = cells.get("gpu_type", "").strip()
    walltime = cells.get("walltime", "").strip()
    return record(
        text("id", cells["id"]),
        text("project", cells["project"]),
        number("submit", cells["submit"]),
        whole("gpus", cells["gpus"]),
        number("duration", cells["duration"]),
        gpu_type or None,
        number("walltime", walltime) if walltime else None,
        cells.get("priority", "").strip() or "normal",
    )


def _from_json(raw: str) -> TraceRecord:
    try:
        row = json.loads(raw)
    except json.JSONDecodeError as error:
        raise RowError(f"not valid JSON: {error.msg} (column {error.colno})") from None
    if not isinstance(row, dict):
        raise RowError(f"expected a JSON object, got {type(row).__name__}")
    unknown = sorted(set(row) - set(FIELDS))
    if unknown:
        raise RowError(f"unknown key(s) {', '.join(unknown)}")
    missing = [name for name in REQUIRED if row.get(name) is None]
    if missing:
        raise RowError(f"missing {', '.join(missing)}")
    return record(
        _json_text("id", row["id"]),
        _json_text("project", row["project"]),
        _json_number("submit", row["submit"]),
        _json_whole("gpus", row["gpus"]),
        _json_number("duration", row["duration"]),
        None if row.get("gpu_type") is None else _json_text("gpu_type", row["gpu_type"]),
        None if row.get("walltime") is None else _json_number("walltime", row["walltime"]),
        "normal" if row.get("priority") is None else _json_text("priority", row["priority"]),
    )


def _json_text(name: str, value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise RowError(f"{name} must be a string, got {json.dumps(value)}")


def _json_number(name: str, value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise RowError(f"{name} must be a number, got {json.dumps(value)}")


def _json_whole(name: str, value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise RowError(f"{name} must be a whole number, got {json.dumps(value)}")


def _write_csv(records: Iterable[TraceRecord], file: TextIO) -> int:
    writer = csv.writer(file, lineterminator="\n")
    writer.writerow(FIELDS)
    count = 0
    for r in records:
        walltime = "" if r.walltime is None else repr(r.walltime)
        writer.writerow(
            (
                r.id,
                r.project,
                repr(r.submit),
                r.gpus,
                r.gpu_type or "",
                repr(r.duration),
                walltime,
                r.priority,
            )
        )
        count += 1
    return count


def _write_jsonl(records: Iterable[TraceRecord], file: TextIO) -> int:
    count = 0
    for r in records:
        row = {
            "id": r.id,
            "project": r.project,
            "submit": r.submit,
            "gpus": r.gpus,
            "gpu_type": r.gpu_type,
            "duration": r.duration,
            "walltime": r.walltime,
            "priority": r.priority,
        }
        file.write(json.dumps(row) + "\n")
        count += 1
    return count
