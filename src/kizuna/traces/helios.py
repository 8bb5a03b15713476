"""SenseTime Helios traces: a cluster's Slurm job log and its per-VC GPU capacity by day.

`cluster_log.csv` has the header `job_id,user,vc,gpu_num,cpu_num,node_num,state,submit_time,
start_time,end_time,duration,queue`; times are `YYYY-MM-DD HH:MM:SS`, `duration` is the run
time in seconds (end - start). A record's project is the virtual cluster (`vc`), its submit
the seconds since the earliest submit time of a GPU job in the file, its id the Slurm job id.
Jobs of every final state are kept (a cancelled or failed job held its GPUs while it ran).
Jobs with `gpu_num` 0 are CPU jobs: left out and counted in `Trace.filtered`.

`cluster_gpu_number.csv` has the header `date,<vc...>,total`, one row per day, the GPUs each
VC owned that day: `read_capacity` turns a day of it into quotas.

Source: S-Lab-System-Group/HeliosData (README: schema of both files; CC-BY-4.0), Hu et al.,
SC'21; the Venus capacity table is `data/Venus/cluster_gpu_number.csv` there.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from kizuna.kernel.errors import InvalidRequest
from kizuna.traces.model import (
    BadRows,
    CsvFile,
    RowError,
    Trace,
    TraceBuilder,
    date_time,
    number,
    opened,
    record,
    text,
    whole,
)

REQUIRED: tuple[str, ...] = ("job_id", "vc", "gpu_num", "submit_time", "duration")
"""The job-log columns a record is made from; the others are read past."""


def read_helios(path: Path, *, on_bad: BadRows = BadRows.REJECT) -> Trace:
    """The GPU jobs of a Helios job log, in submit order."""
    builder = TraceBuilder(path, "helios", on_bad)
    rows: list[tuple[int, str, str, int, datetime, float]] = []
    with opened(path) as file:
        table = CsvFile(path, file)
        columns = table.header(REQUIRED)
        at = [columns[name] for name in REQUIRED]
        for line, cells in table.rows(len(columns), builder.bad):
            try:
                gpus = whole("gpu_num", cells[at[2]])
                if gpus == 0:
                    builder.leave_out()
                    continue
                rows.append(
                    (
                        line,
                        text("job_id", cells[at[0]]),
                        text("vc", cells[at[1]]),
                        gpus,
                        date_time("submit_time", cells[at[3]]),
                        number("duration", cells[at[4]]),
                    )
                )
            except RowError as error:
                builder.bad(line, str(error))
    origin = min((row[4] for row in rows), default=datetime.min)
    for line, job_id, vc, gpus, submitted, duration in rows:
        try:
            builder.add(
                line, record(job_id, vc, (submitted - origin).total_seconds(), gpus, duration)
            )
        except RowError as error:
            builder.bad(line, str(error))
    return builder.finish()


def read_capacity(path: Path, day: str | None = None) -> dict[str, int]:
    """GPUs per virtual cluster on `day` (`YYYY-MM-DD`; None: the table's last day), in the
    table's column order; VCs that owned no GPUs that day are left out."""
    days = _capacity_table(path)
    if not days:
        raise InvalidRequest([f"{path} has no days"])
    wanted = max(days) if day is None else day.strip()
    if wanted not in days:
        first, last = min(days), max(days)
        raise InvalidRequest([f"{path} has no day {day!r}; it covers {first} to {last}"])
    line, cells = days[wanted]
    return _gpus_per_vc(path, line, cells)


def _capacity_table(path: Path) -> dict[str, tuple[int, dict[str, str]]]:
    builder = TraceBuilder(path, "helios", BadRows.REJECT)
    days: dict[str, tuple[int, dict[str, str]]] = {}
    with opened(path) as file:
        table = CsvFile(path, file)
        columns = table.header(("date",))
        for line, cells in table.rows(len(columns), builder.bad):
            named = {name: cells[k] for name, k in columns.items()}
            date = named.pop("date").strip()
            if date in days:
                builder.bad(line, f"day {date} repeats line {days[date][0]}")
            else:
                days[date] = (line, named)
    builder.finish()
    return days


def _gpus_per_vc(path: Path, line: int, cells: dict[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    problems: list[str] = []
    for vc, cell in cells.items():
        if vc == "total":
            continue
        try:
            gpus = whole(vc, cell)
        except RowError as error:
            problems.append(f"{path}: line {line}: {error}")
            continue
        if gpus < 0:
            problems.append(f"{path}: line {line}: {vc} cannot own {gpus} GPUs")
        elif gpus:
            out[vc] = gpus
    if problems:
        raise InvalidRequest(problems)
    return out
