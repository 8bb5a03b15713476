"""The Philly job summary: projects are virtual clusters, submits count from the first job."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest

from kizuna.kernel.errors import InvalidRequest
from kizuna.traces import BadRows, RowProblem, TraceRecord
from kizuna.traces.philly import read_philly

SHARED = Path(__file__).parents[3] / ".." / "shared" / "data" / "traces"
HEADER = "timestamp,duration,num_gpus,gpu_time,cluster\n"


def test_reads_jobs_in_submit_order_from_the_earliest_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "philly.csv"
    path.write_text(
        HEADER
        + "2017-10-09 07:01:55,66.0,1,66.0,11cb48\n"
        + "2017-10-09 06:13:03,2951.0,2,5902.0,6214e9\n"
        + "\n"
    )
    trace = read_philly(path)
    assert trace.source == "philly"
    assert trace.problems == ()
    assert trace.records == (
        TraceRecord("philly-3", "6214e9", 0.0, 2, 2951.0),
        TraceRecord("philly-2", "11cb48", 2932.0, 1, 66.0),
    )


BAD = HEADER + (
    "2017-10-09 07:00:00,60.0,1,60.0,aaa\n"
    "2017-10-09 yesterday,60.0,1,60.0,aaa\n"
    "2017-10-09 07:00:00,60.0,0,0,aaa\n"
    "2017-10-09 07:00:00,-60.0,1,-60.0,aaa\n"
    "2017-10-09 07:00:00,sixty,1,60.0,aaa\n"
    "2017-10-09 07:00:00,60.0,1,60.0,\n"
    "2017-10-09 07:00:00,60.0,1\n"
    "2017-10-09 06:00:00,60.0,4,240.0,bbb\n"
    "2017-10-09 08:00:00,60.0,2,"
)
PROBLEMS = [
    RowProblem(3, "timestamp is not a date and time (YYYY-MM-DD HH:MM:SS): '2017-10-09 yesterday'"),
    RowProblem(4, "gpus must be at least 1, got 0"),
    RowProblem(5, "duration cannot be negative, got -60"),
    RowProblem(6, "duration is not a number: 'sixty'"),
    RowProblem(7, "missing cluster"),
    RowProblem(8, "expected 5 columns, found 3"),
    RowProblem(10, "the file ends mid-row: expected 5 columns, found 4"),
]


def test_skip_reports_bad_rows_by_line(tmp_path: Path) -> None:
    path = tmp_path / "philly.csv"
    path.write_text(BAD)
    trace = read_philly(path, on_bad=BadRows.SKIP)
    assert [(r.id, r.submit) for r in trace.records] == [("philly-9", 0.0), ("philly-2", 3600.0)]
    assert list(trace.problems) == PROBLEMS


def test_reject_refuses_the_trace_naming_every_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "philly.csv"
    path.write_text(BAD)
    with pytest.raises(InvalidRequest) as raised:
        read_philly(path)
    assert raised.value.problems == [f"{path}: {p}" for p in PROBLEMS]


def test_a_file_without_the_philly_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "philly.csv"
    path.write_text("when,how_long\n2017-10-09 07:00:00,60\n")
    with pytest.raises(InvalidRequest, match="the header lacks timestamp, duration, num_gpus"):
        read_philly(path)


@pytest.mark.skipif(not SHARED.exists(), reason="../shared is absent")
def test_the_real_trace_matches_its_published_statistics() -> None:
    trace = read_philly(SHARED / "philly" / "philly.csv")
    assert len(trace.records) == 82_247
    assert trace.problems == ()
    assert len({r.project for r in trace.records}) == 15
    assert round(sum(r.gpus * r.duration for r in trace.records) / 3600) == 978_078
    assert Counter(r.gpus for r in trace.records) == {
        1: 76_627, 2: 1_818, 4: 1_870, 8: 1_643, 12: 7,
        16: 199, 24: 7, 32: 67, 64: 6, 128: 3,
    }  # fmt: skip
    assert Counter(r.project for r in trace.records)["6214e9"] == 41_226
    assert trace.records[0].submit == 0.0
    assert all(a.submit <= b.submit for a, b in pairwise(trace.records))
