"""Gavel traces: durations from total steps and Gavel's throughputs; gaps are bad rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kizuna.kernel.errors import InvalidRequest
from kizuna.traces import BadRows, RowProblem, TraceRecord
from kizuna.traces.gavel import read_gavel

SHARED = Path(__file__).parents[3] / ".." / "shared" / "data" / "traces"
THROUGHPUTS = {
    "v100": {
        "('ResNet-18 (batch size 16)', 1)": {"null": 10.0, "('A3C', 1)": [1.0, 2.0]},
        "('ResNet-18 (batch size 16)', 2)": {"null": 16.0},
        "('A3C', 1)": {"null": 4.0},
    },
    "k80": {"('ResNet-18 (batch size 16)', 1)": {"null": 2.0}},
}


def _row(job_type: str, steps: str, arrival: str, gpus: str) -> str:
    return "\t".join([job_type, "cd %s && python3 main.py", "--steps", "1", steps, arrival, gpus])


@pytest.fixture
def trace_path(tmp_path: Path) -> Path:
    (tmp_path / "simulation_throughputs.json").write_text(json.dumps(THROUGHPUTS))
    path = tmp_path / "ab12cd.trace"
    rows = [
        _row("ResNet-18 (batch size 16)", "1000", "60.000000", "1"),
        _row("ResNet-18 (batch size 16)", "1600", "0.000000", "2"),
        _row("A3C", "400", "30.5", "1"),
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_durations_are_steps_over_throughput_on_the_chosen_type(trace_path: Path) -> None:
    trace = read_gavel(trace_path)
    assert trace.source == "gavel"
    assert trace.records == (
        TraceRecord("ab12cd-2", "ab12cd", 0.0, 2, 100.0),
        TraceRecord("ab12cd-3", "ab12cd", 30.5, 1, 100.0),
        TraceRecord("ab12cd-1", "ab12cd", 60.0, 1, 100.0),
    )


def test_another_gpu_type_and_throughput_file_can_be_named(
    trace_path: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "rates.json"
    elsewhere.write_text(json.dumps({"p100": THROUGHPUTS["k80"]}))
    trace = read_gavel(trace_path, on_bad=BadRows.SKIP, throughputs=elsewhere, gpu_type="p100")
    assert [(r.id, r.duration) for r in trace.records] == [("ab12cd-1", 500.0)]
    assert [p.line for p in trace.problems] == [2, 3]


def test_a_job_without_a_throughput_is_a_bad_row_on_its_line(trace_path: Path) -> None:
    with trace_path.open("a") as file:
        file.write(_row("A3C", "400", "90", "4") + "\n")
        file.write(_row("A3C", "-4", "90", "1") + "\n")
        file.write(_row("A3C", "400", "90", "0") + "\n")
        file.write("A3C\tcd %s\t1\n")
        file.write(_row("A3C", "many", "90", "1") + "\n")
    problems = [
        RowProblem(4, "no v100 throughput for 'A3C' on 4 GPU(s)"),
        RowProblem(5, "total_steps cannot be negative, got -4"),
        RowProblem(6, "scale_factor (GPUs) must be at least 1, got 0"),
        RowProblem(7, "expected 7 columns, found 3"),
        RowProblem(8, "total_steps is not a number: 'many'"),
    ]
    assert list(read_gavel(trace_path, on_bad=BadRows.SKIP).problems) == problems
    with pytest.raises(InvalidRequest) as raised:
        read_gavel(trace_path)
    assert raised.value.problems == [f"{trace_path}: {p}" for p in problems]


def test_an_unknown_gpu_type_names_the_known_ones(trace_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="has no GPU type 'h100'; it has: k80, v100"):
        read_gavel(trace_path, gpu_type="h100")


def test_a_missing_throughput_file_is_refused(trace_path: Path) -> None:
    with pytest.raises(InvalidRequest, match=r"cannot read .*nowhere\.json"):
        read_gavel(trace_path, throughputs=trace_path.parent / "nowhere.json")


@pytest.mark.skipif(not SHARED.exists(), reason="../shared is absent")
def test_ed69ec_replays_every_job() -> None:
    trace = read_gavel(SHARED / "gavel-msr" / "ed69ec.trace")
    assert len(trace.records) == 951
    assert all(r.gpus == 1 and r.duration > 0 for r in trace.records)
    assert {r.project for r in trace.records} == {"ed69ec"}


@pytest.mark.skipif(not SHARED.exists(), reason="../shared is absent")
def test_0e4a51_has_197_jobs_without_a_v100_throughput() -> None:
    path = SHARED / "gavel-msr" / "0e4a51.trace"
    trace = read_gavel(path, on_bad=BadRows.SKIP)
    assert len(trace.problems) == 197
    assert len(trace.records) == 1181 - 197
    assert all("no v100 throughput" in p.message for p in trace.problems)
    with pytest.raises(InvalidRequest) as raised:
        read_gavel(path)
    assert raised.value.problems[-1] == "... and 177 more bad rows"
