"""Gavel's trace files (the 7-field old format) with Gavel's measured throughputs.

A `.trace` file has one tab-separated job per line and no header: `job_type, command,
num_steps_arg, needs_data_dir, total_steps, arrival_time_s, scale_factor`, where
`scale_factor` is the gang size. Durations are not stored: as in Gavel's simulator, a job
runs `total_steps / throughputs[gpu_type][str((job_type, scale_factor))]["null"]` seconds,
from `simulation_throughputs.json`. A row whose (job type, GPUs) has no throughput there is a
bad row. Records: id `<stem>-<line>`, project the file's stem (the Philly virtual cluster it
was drawn from), GPU type None (durations are those of the chosen type). Source:
`scheduler/traces/msr/` of stanford-futuredata/gavel (MIT).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from kizuna.kernel.errors import InvalidRequest
from kizuna.traces.model import (
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

FIELDS = 7
"""Tab-separated fields of an old-format Gavel trace row."""

THROUGHPUTS = "simulation_throughputs.json"
"""The throughput table's file name, looked for beside the trace."""


def read_gavel(
    path: Path,
    *,
    on_bad: BadRows = BadRows.REJECT,
    throughputs: Path | str | None = None,
    gpu_type: str = "v100",
) -> Trace:
    """The jobs of a Gavel trace, timed on `gpu_type` (a key of the throughput table)."""
    table_path = Path(throughputs) if throughputs is not None else path.parent / THROUGHPUTS
    rates = load_throughputs(table_path, gpu_type)
    builder = TraceBuilder(path, "gavel", on_bad)
    with opened(path) as file:
        for line, cells in CsvFile(path, file, delimiter="\t", quoted=False).rows(
            FIELDS, builder.bad
        ):
            try:
                builder.add(line, _job(path.stem, line, cells, rates, gpu_type))
            except RowError as error:
                builder.bad(line, str(error))
    return builder.finish()


def load_throughputs(path: Path, gpu_type: str) -> dict[str, Any]:
    """The throughput entries of one GPU type; raises `InvalidRequest` if there are none."""
    with opened(path) as file:
        try:
            table = json.load(file)
        except json.JSONDecodeError as error:
            raise InvalidRequest([f"{path} is not valid JSON: {error}"]) from None
    if not isinstance(table, dict):
        raise InvalidRequest([f"{path}: expected an object of GPU types"])
    rates = table.get(gpu_type)
    if not isinstance(rates, dict):
        raise InvalidRequest(
            [f"{path} has no GPU type {gpu_type!r}; it has: {', '.join(sorted(table))}"]
        )
    return rates


def _job(vc: str, line: int, cells: list[str], rates: dict[str, Any], gpu_type: str) -> TraceRecord:
    job_type = text("job_type", cells[0])
    steps = number("total_steps", cells[4])
    arrival = number("arrival_time", cells[5])
    gpus = whole("scale_factor", cells[6])
    if steps < 0:
        raise RowError(f"total_steps cannot be negative, got {steps:g}")
    if gpus < 1:
        raise RowError(f"scale_factor (GPUs) must be at least 1, got {gpus}")
    entry = rates.get(str((job_type, gpus)))
    rate = entry.get("null") if isinstance(entry, dict) else None
    if not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0:
        raise RowError(f"no {gpu_type} throughput for {job_type!r} on {gpus} GPU(s)")
    return record(f"{vc}-{line}", vc, arrival, gpus, steps / rate)
