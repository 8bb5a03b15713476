"""The Microsoft Philly job summary, as Pollux ships it (`philly.csv`).

Header `timestamp,duration,num_gpus,gpu_time,cluster`: submit time (`YYYY-MM-DD HH:MM:SS`),
run time in seconds, gang size, GPU-seconds, and the virtual cluster's hash. A record's
project is the virtual cluster, its submit the seconds since the file's earliest timestamp,
and its id `philly-<line>` names the line it was read from. Philly says nothing of GPU types,
walltimes or priorities: they stay None, None and normal. Source: `simulator/traces/philly.csv`
of petuum/adaptdl (Jeon et al., ATC'19; Qiao et al., OSDI'21).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

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

HEADER: tuple[str, ...] = ("timestamp", "duration", "num_gpus", "gpu_time", "cluster")


def read_philly(path: Path, *, on_bad: BadRows = BadRows.REJECT) -> Trace:
    """The jobs of a Philly job summary, in submit order."""
    builder = TraceBuilder(path, "philly", on_bad)
    rows: list[tuple[int, datetime, float, int, str]] = []
    with opened(path) as file:
        table = CsvFile(path, file)
        columns = table.header(HEADER)
        at = [columns[name] for name in ("timestamp", "duration", "num_gpus", "cluster")]
        for line, cells in table.rows(len(columns), builder.bad):
            try:
                rows.append(
                    (
                        line,
                        date_time("timestamp", cells[at[0]]),
                        number("duration", cells[at[1]]),
                        whole("num_gpus", cells[at[2]]),
                        text("cluster", cells[at[3]]),
                    )
                )
            except RowError as error:
                builder.bad(line, str(error))
    origin = min((row[1] for row in rows), default=datetime.min)
    for line, submitted, duration, gpus, cluster in rows:
        try:
            builder.add(
                line,
                record(
                    f"philly-{line}",
                    cluster,
                    (submitted - origin).total_seconds(),
                    gpus,
                    duration,
                ),
            )
        except RowError as error:
            builder.bad(line, str(error))
    return builder.finish()
