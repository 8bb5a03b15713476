"""The Tiresias job list: one project, submit times and durations as given."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from kizuna.kernel.errors import InvalidRequest
from kizuna.traces import BadRows, RowProblem, TraceRecord
from kizuna.traces.tiresias import read_tiresias

SHARED = Path(__file__).parents[3] / ".." / "shared" / "data" / "traces"
HEADER = "job_id,num_gpu,submit_time,iterations,model_name,duration,interval\n"


def test_reads_jobs_into_one_project(tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text(HEADER + "0,1,30,606,vgg19,164,30\n1,8,0,133,vgg11,147,23\n")
    assert read_tiresias(path).records == (
        TraceRecord("1", "tiresias", 0.0, 8, 147.0),
        TraceRecord("0", "tiresias", 30.0, 1, 164.0),
    )


def test_bad_rows_are_reported_by_line_or_refuse_the_trace(tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text(
        HEADER
        + "0,1,0,606,vgg19,164,30\n"
        + "1,0,5,606,vgg19,164,30\n"
        + "2,1,-5,606,vgg19,164,30\n"
        + "3,1,5,606,vgg19,,30\n"
        + "0,1,9,606,vgg19,164,30\n"
    )
    problems = [
        RowProblem(3, "gpus must be at least 1, got 0"),
        RowProblem(4, "submit cannot be negative, got -5"),
        RowProblem(5, "missing duration"),
        RowProblem(6, "id '0' is already used on line 2"),
    ]
    trace = read_tiresias(path, on_bad=BadRows.SKIP)
    assert [r.id for r in trace.records] == ["0"]
    assert list(trace.problems) == problems
    with pytest.raises(InvalidRequest) as raised:
        read_tiresias(path)
    assert raised.value.problems == [f"{path}: {p}" for p in problems]


@pytest.mark.skipif(not SHARED.exists(), reason="../shared is absent")
def test_the_sample_trace_has_sixty_jobs() -> None:
    trace = read_tiresias(SHARED / "tiresias" / "60_job.csv")
    assert len(trace.records) == 60
    assert Counter(r.gpus for r in trace.records) == {1: 30, 2: 10, 4: 10, 8: 10}
    assert trace.records[-1].submit == 1_779.0
    assert min(r.duration for r in trace.records) == 121.0
