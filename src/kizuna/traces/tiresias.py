"""The Tiresias simulator's job list (`60_job.csv`).

Header `job_id,num_gpu,submit_time,iterations,model_name,duration,interval`: submit time and
duration in seconds from the trace's start, and the gang size. Every job goes to one project,
"tiresias"; the id is Tiresias' job id. Source: `simulator/60_job.csv`
of SymbioticLab/Tiresias (Apache-2.0).
"""

from __future__ import annotations

from pathlib import Path

from kizuna.traces.model import (
    BadRows,
    CsvFile,
    RowError,
    Trace,
    TraceBuilder,
    number,
    opened,
    record,
    text,
    whole,
)

PROJECT = "tiresias"
REQUIRED: tuple[str, ...] = ("job_id", "num_gpu", "submit_time", "duration")


def read_tiresias(path: Path, *, on_bad: BadRows = BadRows.REJECT) -> Trace:
    """The jobs of a Tiresias job list, in submit order."""
    builder = TraceBuilder(path, "tiresias", on_bad)
    with opened(path) as file:
        table = CsvFile(path, file)
        columns = table.header(REQUIRED)
        at = [columns[name] for name in REQUIRED]
        for line, cells in table.rows(len(columns), builder.bad):
            try:
                builder.add(
                    line,
                    record(
                        text("job_id", cells[at[0]]),
                        PROJECT,
                        number("submit_time", cells[at[2]]),
                        whole("num_gpu", cells[at[1]]),
                        number("duration", cells[at[3]]),
                    ),
                )
            except RowError as error:
                builder.bad(line, str(error))
    return builder.finish()
