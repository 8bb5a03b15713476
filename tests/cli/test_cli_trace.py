"""`kizuna trace synth | convert | info`, as a user or a script runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from kizuna.cli.main import app
from kizuna.traces import TraceRecord, read_trace, write_trace

PHILLY = (
    "timestamp,duration,num_gpus,gpu_time,cluster\n"
    "2017-10-09 07:01:55,66.0,1,66.0,11cb48\n"
    "2017-10-09 06:13:03,2951.0,2,5902.0,6214e9\n"
    "2017-10-09 08:00:00,-5.0,1,-5.0,6214e9\n"
)


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


def trace_cli(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(app, ["trace", *args], env={"COLUMNS": "160"})


def run_json(runner: CliRunner, *args: str) -> dict[str, Any]:
    result = trace_cli(runner, *args, "--output", "json")
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_synth_writes_the_jobs_asked_for(runner: CliRunner, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"synth{suffix}"
    document = run_json(runner, "synth", "-n", "200", "--seed", "4", "-o", str(out))
    assert document == {
        "path": str(out),
        "jobs": 200,
        "seed": 4,
        "projects": 15,
        "load": 0.8,
        "gpus": 1024,
        "rate": None,
    }
    records = read_trace(out).records
    assert len(records) == 200 and records[0].id == "synth-001"


def test_synth_is_reproducible_from_its_seed(runner: CliRunner, tmp_path: Path) -> None:
    paths = [tmp_path / f"{name}.csv" for name in ("a", "b", "c")]
    for path, seed in zip(paths, ("1", "1", "2"), strict=True):
        result = trace_cli(runner, "synth", "-n", "50", "--seed", seed, "-o", str(path))
        assert result.exit_code == 0, result.output
        assert f"Wrote 50 jobs to {path} (seed {seed}" in result.stdout
    assert paths[0].read_text() == paths[1].read_text() != paths[2].read_text()


def test_synth_at_a_rate(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "rate.csv"
    document = run_json(runner, "synth", "-n", "400", "--rate", "60", "-o", str(out))
    assert document["rate"] == 60.0 and document["load"] is None
    records = read_trace(out).records
    hours = (records[-1].submit - records[0].submit) / 3600
    assert 5 < hours < 8  # 400 Poisson arrivals at 60 per hour


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "out.txt"], "name it .csv or .jsonl"),
        (["-o", "out.csv", "--rate", "0"], "the arrival rate must be positive"),
        (["-o", "out.csv", "-n", "-1"], "Invalid value for '-n' / '--jobs'"),
    ],
)
def test_synth_refuses_bad_input(
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    result = trace_cli(runner, "synth", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert not list(tmp_path.iterdir())


def test_convert_writes_canonical_records(runner: CliRunner, tmp_path: Path) -> None:
    source = tmp_path / "philly.csv"
    source.write_text(PHILLY)
    out = tmp_path / "jobs.jsonl"
    result = trace_cli(runner, "convert", str(source), "-o", str(out), "--bad-rows", "skip")
    assert result.exit_code == 0, result.output
    assert f"Wrote 2 jobs read as philly to {out}." in result.stdout
    assert "Skipped 1 bad row of philly.csv:" in result.stderr
    assert "line 4: duration cannot be negative" in result.stderr
    records = read_trace(out).records
    assert [(r.project, r.gpus, r.duration) for r in records] == [
        ("6214e9", 2, 2951.0),
        ("11cb48", 1, 66.0),
    ]


def test_convert_rejects_bad_rows_by_default(runner: CliRunner, tmp_path: Path) -> None:
    source = tmp_path / "philly.csv"
    source.write_text(PHILLY)
    result = trace_cli(runner, "convert", str(source), "-o", str(tmp_path / "jobs.csv"))
    assert result.exit_code == 2
    assert "line 4: duration cannot be negative" in result.stderr
    assert not (tmp_path / "jobs.csv").exists()


def test_convert_json(runner: CliRunner, tmp_path: Path) -> None:
    source = tmp_path / "philly.csv"
    source.write_text(PHILLY)
    out = tmp_path / "jobs.csv"
    document = run_json(runner, "convert", str(source), "-o", str(out), "--bad-rows", "skip")
    assert document == {
        "path": str(out),
        "jobs": 2,
        "source": "philly",
        "skipped": 1,
        "filtered": 0,
    }


def info_trace(tmp_path: Path) -> Path:
    """Ten 1-GPU jobs of an hour, one every 6 minutes, and one 8-GPU job of half an hour."""
    records = [TraceRecord(f"j{k}", "small", k * 360.0, 1, 3600.0) for k in range(10)]
    records.append(TraceRecord("big", "large", 100.0, 8, 1800.0))
    path = tmp_path / "jobs.csv"
    write_trace(records, path)
    return path


def test_info_summarises_the_trace(runner: CliRunner, tmp_path: Path) -> None:
    document = run_json(runner, "info", str(info_trace(tmp_path)))
    assert document["jobs"] == 11 and document["tenants"] == 2
    assert document["span"] == 3240.0
    assert document["gpu_hours"] == 14.0
    assert document["gpus_per_job"] == [
        {"gpus": 1, "jobs": 10, "gpu_hours": 10.0},
        {"gpus": 8, "jobs": 1, "gpu_hours": 4.0},
    ]
    assert document["duration"]["p50"] == 3600.0 and document["duration"]["max"] == 3600.0
    assert [t["tenant"] for t in document["busiest_tenants"]] == ["small", "large"]
    # 14 GPU-hours over 0.9 h of submits: 15.6 GPUs; at 80 %: 19.4, so 3 nodes of 8
    assert document["offered_gpus"] == pytest.approx(15.556, abs=1e-3)
    assert document["cluster_for_load"] == {"load": 0.8, "gpus_per_node": 8, "nodes": 3, "gpus": 24}


def test_info_prints_for_people(runner: CliRunner, tmp_path: Path) -> None:
    result = trace_cli(runner, "info", str(info_trace(tmp_path)))
    assert result.exit_code == 0, result.output
    assert "11 jobs from 2 tenants over 54m, asking for 14 GPU-hours" in result.stdout
    assert "GPUs per job" in result.stdout and "Durations" in result.stdout
    assert "A cluster for 80% load: 24 GPUs (3 nodes of 8 GPUs)." in result.stdout


def test_info_of_an_unknown_format_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "jobs.txt"
    path.write_text("a,b\n1,2\n")
    result = trace_cli(runner, "info", str(path))
    assert result.exit_code == 2
    assert "cannot tell the format" in result.stderr


def test_reader_options_reach_the_reader_and_unknown_ones_are_refused(
    runner: CliRunner, tmp_path: Path
) -> None:
    """`--option KEY=VALUE` goes to the format's reader; a key it does not take, or a
    malformed pair, exits 2 naming the problem."""
    trace = tmp_path / "vc.trace"
    trace.write_text("ResNet-18 (batch size 16)\tcmd\t-n\t1\t1000\t0.0\t1\n")
    throughputs = tmp_path / "t.json"
    throughputs.write_text('{"k80": {"(\'ResNet-18 (batch size 16)\', 1)": {"null": 2.0}}}')
    document = run_json(
        runner, "info", str(trace), "--option", f"throughputs={throughputs}",
        "--option", "gpu_type=k80",
    )  # fmt: skip
    assert document["jobs"] == 1
    assert document["gpu_hours"] == round(1000 / 2.0 / 3600, 3)  # 1,000 steps at 2 per second
    wrong = trace_cli(runner, "info", str(trace), "--option", "color=red")
    assert wrong.exit_code == 2
    assert "has no option 'color'" in wrong.stderr
    broken = trace_cli(runner, "info", str(trace), "--option", "broken")
    assert broken.exit_code == 2
    assert "not KEY=VALUE" in broken.stderr
