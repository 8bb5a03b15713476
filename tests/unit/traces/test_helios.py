"""Helios: the Slurm job log (projects are VCs, CPU jobs left out) and VC capacity by day."""

from __future__ import annotations

from pathlib import Path

import pytest

from kizuna.kernel.errors import InvalidRequest
from kizuna.traces import BadRows, RowProblem, TraceRecord, read_capacity
from kizuna.traces.helios import read_helios

SHARED = Path(__file__).parents[3] / ".." / "shared" / "data" / "traces"
HEADER = (
    "job_id,user,vc,gpu_num,cpu_num,node_num,state,submit_time,start_time,end_time,duration,queue\n"
)


def _job(job_id: str, vc: str, gpus: str, submit: str, duration: str) -> str:
    return f"{job_id},u1,{vc},{gpus},4,1,COMPLETED,{submit},{submit},{submit},{duration},0\n"


def test_gpu_jobs_become_records_and_cpu_jobs_are_counted_out(tmp_path: Path) -> None:
    path = tmp_path / "cluster_log.csv"
    path.write_text(
        HEADER
        + _job("1425511", "vcJkd", "1", "2020-06-09 18:41:01", "36848")
        + _job("1425512", "vchbv", "4", "2020-06-09 18:41:27", "249")
        + _job("1425513", "vcpDC", "0", "2020-06-01 00:00:00", "675233")
        + _job("1425514", "vcJkd", "8", "2020-06-09 18:40:01", "0")
    )
    trace = read_helios(path)
    assert trace.source == "helios"
    assert trace.filtered == 1
    assert trace.records == (
        TraceRecord("1425514", "vcJkd", 0.0, 8, 0.0),
        TraceRecord("1425511", "vcJkd", 60.0, 1, 36848.0),
        TraceRecord("1425512", "vchbv", 86.0, 4, 249.0),
    )


def test_bad_rows_are_reported_by_line_or_refuse_the_log(tmp_path: Path) -> None:
    path = tmp_path / "cluster_log.csv"
    path.write_text(
        HEADER
        + _job("1", "vcA", "1", "2020-06-09 18:41:01", "60")
        + _job("2", "vcA", "-2", "2020-06-09 18:41:01", "60")
        + _job("3", "vcA", "2", "09/06/2020 18:41", "60")
        + _job("4", "vcA", "2", "2020-06-09 18:41:01", "")
        + _job("5", "", "2", "2020-06-09 18:41:01", "60")
        + _job("6", "vcA", "two", "2020-06-09 18:41:01", "60")
    )
    problems = [
        RowProblem(3, "gpus must be at least 1, got -2"),
        RowProblem(
            4, "submit_time is not a date and time (YYYY-MM-DD HH:MM:SS): '09/06/2020 18:41'"
        ),
        RowProblem(5, "missing duration"),
        RowProblem(6, "missing vc"),
        RowProblem(7, "gpu_num is not a whole number: 'two'"),
    ]
    trace = read_helios(path, on_bad=BadRows.SKIP)
    assert [r.id for r in trace.records] == ["1"]
    assert list(trace.problems) == problems
    with pytest.raises(InvalidRequest) as raised:
        read_helios(path)
    assert raised.value.problems == [f"{path}: {p}" for p in problems]


CAPACITY = "date,vcA,vcB,vcC,total\n2020-04-01,8,0,16,24\n2020-04-02,8,8,16,32\n"


def test_capacity_of_a_day_leaves_out_vcs_without_gpus(tmp_path: Path) -> None:
    path = tmp_path / "cluster_gpu_number.csv"
    path.write_text(CAPACITY)
    assert read_capacity(path, "2020-04-01") == {"vcA": 8, "vcC": 16}


def test_capacity_defaults_to_the_last_day(tmp_path: Path) -> None:
    path = tmp_path / "cluster_gpu_number.csv"
    path.write_text(CAPACITY)
    assert read_capacity(path) == {"vcA": 8, "vcB": 8, "vcC": 16}


def test_a_day_outside_the_table_names_its_first_and_last_days(tmp_path: Path) -> None:
    path = tmp_path / "cluster_gpu_number.csv"
    path.write_text(CAPACITY)
    with pytest.raises(InvalidRequest) as raised:
        read_capacity(path, "2020-05-01")
    assert raised.value.problems == [
        f"{path} has no day '2020-05-01'; it covers 2020-04-01 to 2020-04-02"
    ]


def test_a_bad_capacity_cell_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cluster_gpu_number.csv"
    path.write_text("date,vcA,vcB,total\n2020-04-01,8,eight,16\n")
    with pytest.raises(InvalidRequest) as raised:
        read_capacity(path)
    assert raised.value.problems == [f"{path}: line 2: vcB is not a whole number: 'eight'"]


@pytest.mark.skipif(not SHARED.exists(), reason="../shared is absent")
def test_venus_capacity_totals_the_published_gpus() -> None:
    path = SHARED / "helios-venus" / "cluster_gpu_number.csv"
    first = read_capacity(path, "2020-04-01")
    assert sum(first.values()) == 968
    assert all(gpus > 0 for gpus in first.values())
    assert sum(read_capacity(path).values()) == 1_080
