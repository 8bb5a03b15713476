"""Alibaba PAI 2020: tasks add up to one record per job; CPU and unfinished jobs counted out."""

from __future__ import annotations

from pathlib import Path

import pytest

from kizuna.kernel.errors import InvalidRequest
from kizuna.traces import BadRows, RowProblem, TraceRecord
from kizuna.traces.pai import TASK_COLUMNS, read_pai

TASKS = (
    "j1,ps,1.0,Terminated,100.0,500.0,600.0,29.3,,\n"
    "j1,worker,2.0,Terminated,110.0,520.0,400.0,10.0,50.0,V100\n"
    "j2,tensorflow,1.0,Terminated,50.0,80.0,600.0,29.3,50.0,MISC\n"
    "j3,worker,1.0,Terminated,60.0,70.0,600.0,29.3,,\n"
    "j4,worker,3.0,Running,200.0,,600.0,29.3,100.0,T4\n"
    "j5,worker,4.0,Terminated,300.0,400.0,600.0,29.3,75.0,P100\n"
    "j5,evaluator,1.0,Failed,290.0,450.0,600.0,29.3,25.0,T4\n"
)
JOBS = (
    "j1,inst1,userA,Terminated,90.0,520.0\n"
    "j2,inst2,userB,Terminated,40.0,80.0\n"
    "j5,inst5,userA,Failed,280.0,450.0\n"
)


def test_one_record_per_gpu_job_summing_instances_and_percent(tmp_path: Path) -> None:
    path = tmp_path / "pai_task_table.csv"
    path.write_text(TASKS)
    trace = read_pai(path)
    assert trace.source == "pai"
    assert trace.filtered == 2
    assert trace.records == (
        TraceRecord("j2", "pai", 0.0, 1, 30.0, None),
        TraceRecord("j1", "pai", 50.0, 1, 420.0, "V100"),
        TraceRecord("j5", "pai", 240.0, 4, 160.0, "P100"),
    )


def test_the_job_table_gives_users_and_submission_times(tmp_path: Path) -> None:
    tasks, jobs = tmp_path / "pai_task_table.csv", tmp_path / "pai_job_table.csv"
    tasks.write_text(",".join(TASK_COLUMNS) + "\n" + TASKS)
    jobs.write_text(JOBS)
    trace = read_pai(tasks, job_table=jobs)
    assert [(r.id, r.project, r.submit, r.duration) for r in trace.records] == [
        ("j2", "userB", 0.0, 30.0),
        ("j1", "userA", 50.0, 420.0),
        ("j5", "userA", 240.0, 160.0),
    ]


def test_a_bad_task_makes_its_job_a_bad_row(tmp_path: Path) -> None:
    tasks, jobs = tmp_path / "pai_task_table.csv", tmp_path / "pai_job_table.csv"
    tasks.write_text(
        "ok,worker,1,Terminated,0,10,600,29,100,V100\n"
        "k1,ps,x,Terminated,1,2,600,29,100,V100\n"
        "k1,worker,1,Terminated,1,2,600,29,100,V100\n"
        "k2,worker,1,Terminated,10,5,600,29,100,V100\n"
        "k3,worker,1,Terminated,10,20,600,29,-100,V100\n"
        "k4,worker,1,Terminated\n"
        "j6,worker,1,Terminated,10,20,600,29,100,V100\n"
    )
    jobs.write_text("ok,i0,userA,Terminated,0,10\nk9,i9,,Terminated,0,1\nk8,i8\n")
    problems = [
        RowProblem(2, "inst_num is not a number: 'x'"),
        RowProblem(2, "pai_job_table.csv: missing user"),
        RowProblem(3, "pai_job_table.csv: expected 6 columns, found 2"),
        RowProblem(4, "end_time 5 is before start_time 10"),
        RowProblem(5, "plan_gpu cannot be negative, got -100"),
        RowProblem(6, "expected 10 columns, found 4"),
        RowProblem(7, "job j6 is not in the job table"),
    ]
    trace = read_pai(tasks, on_bad=BadRows.SKIP, job_table=jobs)
    assert [r.id for r in trace.records] == ["ok"]
    assert list(trace.problems) == problems
    with pytest.raises(InvalidRequest) as raised:
        read_pai(tasks, job_table=jobs)
    assert raised.value.problems == [f"{tasks}: {p}" for p in problems]
