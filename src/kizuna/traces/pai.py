"""The Alibaba PAI GPU trace of 2020 (`cluster-trace-gpu-v2020`): one record per job.

Upstream: alibaba/clusterdata, `cluster-trace-gpu-v2020/README.md` and the `.header` files
in its `data/` folder (Weng et al., "MLaaS in the Wild", NSDI'22). The CSV tables have no
header row (a first row that repeats the column names is read past):

- `pai_task_table.csv`, read always: `job_name,task_name,inst_num,status,start_time,end_time,
  plan_cpu,plan_mem,plan_gpu,gpu_type`. A job has one or more tasks (roles such as ps,
  worker), each of `inst_num` instances asking `plan_gpu` percent of one GPU each.
- `pai_job_table.csv`, read when given as `job_table`: `job_name,inst_id,user,status,
  start_time,end_time`, where `start_time` is the submission time.

What a record takes from them:

- gpus: ceil(sum over the job's tasks of inst_num x plan_gpu / 100); an empty plan_gpu is 0.
  Jobs that ask no GPU are CPU jobs: left out, counted in `Trace.filtered`.
- duration: the latest task end_time minus the earliest task start_time. A job with a task
  lacking a start or end time had not run to its end when the trace was cut: left out and
  counted in `Trace.filtered` too.
- submit: the job table's start_time (submission) when a job table is given, else the
  earliest task start_time; then counted from the earliest submit of a kept job (the trace's
  times are already shifted by a constant).
- gpu_type: that of the task asking the most GPU; "MISC" (older GPUs) and empty are None.
- project: the job's user from the job table, else "pai" for every job; id: the job_name.
- status is not read: failed and killed jobs held their GPUs while they ran.

A task row that cannot be read makes its whole job a bad row (reported on the task's line);
bad job-table rows are reported with the job table's name in the message.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from kizuna.traces.model import (
    BadRows,
    CsvFile,
    Report,
    RowError,
    Trace,
    TraceBuilder,
    number,
    opened,
    record,
    text,
)

TASK_COLUMNS: tuple[str, ...] = (
    "job_name",
    "task_name",
    "inst_num",
    "status",
    "start_time",
    "end_time",
    "plan_cpu",
    "plan_mem",
    "plan_gpu",
    "gpu_type",
)
JOB_COLUMNS: tuple[str, ...] = ("job_name", "inst_id", "user", "status", "start_time", "end_time")
PROJECT = "pai"
"""The project of every job when no job table names users."""
UNTYPED: frozenset[str] = frozenset({"", "MISC"})


@dataclass(slots=True)
class _Job:
    """What the tasks of one job add up to so far."""

    line: int
    gpu_percent: float = 0.0
    start: float = math.inf
    end: float = -math.inf
    unfinished: bool = False
    bad: bool = False
    gpu_type: str | None = None
    type_percent: float = 0.0


@dataclass(frozen=True, slots=True)
class _Task:
    job_name: str
    gpu_percent: float
    start: float | None
    end: float | None
    gpu_type: str | None


def read_pai(
    path: Path, *, on_bad: BadRows = BadRows.REJECT, job_table: Path | str | None = None
) -> Trace:
    """The GPU jobs of a PAI task table (and users and submit times from `job_table`)."""
    builder = TraceBuilder(path, "pai", on_bad)
    jobs = _jobs(path, builder)
    owners = _owners(Path(job_table), builder) if job_table is not None else None
    kept = list(_kept(jobs, owners, builder))
    origin = min((submit for *_, submit in kept), default=0.0)
    for name, job, project, submit in kept:
        gpus = max(1, math.ceil(job.gpu_percent / 100 - 1e-9))
        try:
            item = record(name, project, submit - origin, gpus, job.end - job.start, job.gpu_type)
        except RowError as error:
            builder.bad(job.line, str(error))
        else:
            builder.add(job.line, item)
    return builder.finish()


def _kept(
    jobs: dict[str, _Job],
    owners: dict[str, tuple[str, float | None]] | None,
    builder: TraceBuilder,
) -> Iterator[tuple[str, _Job, str, float]]:
    """(name, job, project, submit) of each job to record; CPU and unfinished jobs are counted
    out, jobs missing from the job table reported."""
    for name, job in jobs.items():
        if job.bad:
            continue
        if job.gpu_percent <= 0 or job.unfinished:
            builder.leave_out()
        elif owners is None:
            yield name, job, PROJECT, job.start
        elif name not in owners:
            builder.bad(job.line, f"job {name} is not in the job table")
        else:
            user, submitted = owners[name]
            yield name, job, user, job.start if submitted is None else submitted


def _jobs(path: Path, builder: TraceBuilder) -> dict[str, _Job]:
    jobs: dict[str, _Job] = {}
    with opened(path) as file:
        for line, cells in _rows(path, file, TASK_COLUMNS, builder.bad):
            name = cells[0].strip()
            try:
                task = _task(cells)
            except RowError as error:
                builder.bad(line, str(error))
                jobs.setdefault(name, _Job(line)).bad = True
                continue
            _add(jobs.setdefault(name, _Job(line)), task)
    return jobs


def _task(cells: list[str]) -> _Task:
    name = text("job_name", cells[0])
    instances = number("inst_num", cells[2])
    plan_gpu = number("plan_gpu", cells[8]) if cells[8].strip() else 0.0
    start = number("start_time", cells[4]) if cells[4].strip() else None
    end = number("end_time", cells[5]) if cells[5].strip() else None
    if instances < 0:
        raise RowError(f"inst_num cannot be negative, got {instances:g}")
    if plan_gpu < 0:
        raise RowError(f"plan_gpu cannot be negative, got {plan_gpu:g}")
    if start is not None and end is not None and end < start:
        raise RowError(f"end_time {end:g} is before start_time {start:g}")
    gpu_type = cells[9].strip()
    return _Task(name, instances * plan_gpu, start, end, None if gpu_type in UNTYPED else gpu_type)


def _add(job: _Job, task: _Task) -> None:
    job.gpu_percent += task.gpu_percent
    if task.gpu_percent > job.type_percent:
        job.gpu_type, job.type_percent = task.gpu_type, task.gpu_percent
    if task.start is None or task.end is None:
        job.unfinished = True
        return
    job.start = min(job.start, task.start)
    job.end = max(job.end, task.end)


def _owners(path: Path, builder: TraceBuilder) -> dict[str, tuple[str, float | None]]:
    """job_name -> (user, submit time or None) from the job table."""
    owners: dict[str, tuple[str, float | None]] = {}
    lines: dict[str, int] = {}

    def report(line: int, message: str) -> None:
        builder.bad(line, f"{path.name}: {message}")

    with opened(path) as file:
        for line, cells in _rows(path, file, JOB_COLUMNS, report):
            try:
                name, user = text("job_name", cells[0]), text("user", cells[2])
                submit = number("start_time", cells[4]) if cells[4].strip() else None
            except RowError as error:
                report(line, str(error))
                continue
            if name in lines:
                report(line, f"job {name} repeats line {lines[name]}")
                continue
            lines[name] = line
            owners[name] = (user, submit)
    return owners


def _rows(
    path: Path, file: TextIO, columns: tuple[str, ...], report: Report
) -> Iterator[tuple[int, list[str]]]:
    """The table's rows, less a first row that repeats the column names."""
    for line, cells in CsvFile(path, file).rows(len(columns), report):
        if line == 1 and tuple(cell.strip() for cell in cells) == columns:
            continue
        yield line, cells
