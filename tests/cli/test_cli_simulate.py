"""`kizuna simulate`, as a planner or a script runs it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from kizuna.cli.main import app
from kizuna.traces import TraceRecord, write_trace


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


def trace_file(tmp_path: Path, *records: TraceRecord, name: str = "jobs.csv") -> Path:
    path = tmp_path / name
    write_trace(records, path)
    return path


def busy(jobs: int = 12) -> tuple[TraceRecord, ...]:
    """Jobs on three tenants arriving faster than one node runs them."""
    return tuple(
        TraceRecord(f"j{k:02d}", f"vc{k % 3}", k * 300.0, 4 if k % 3 else 8, 1800.0)
        for k in range(jobs)
    )


def simulate(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(app, ["simulate", *args], env={"COLUMNS": "220"})


def run_json(runner: CliRunner, *args: str) -> dict[str, Any]:
    result = simulate(runner, *args, "--output", "json")
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_a_lone_job_runs_for_its_duration(runner: CliRunner, tmp_path: Path) -> None:
    path = trace_file(tmp_path, TraceRecord("j1", "vc1", 30.0, 4, 5400.0))
    document = run_json(runner, str(path), "--nodes", "1", "--policy", "fifo")
    (run,) = document["runs"]
    metrics = run["metrics"]
    assert metrics["jct"]["mean"] == metrics["jct"]["p99"] == 5400.0
    assert metrics["wait"]["mean"] == 0.0
    assert metrics["makespan"] == metrics["makespan_bound"] == 5400.0
    assert metrics["jct_mean_bound"] == 5400.0
    assert metrics["gpu_hours"] == 6.0
    assert run["cluster"]["gpus"] == {"V100": 8}
    assert document["trace"]["jobs"] == 1 and document["report"] is None


def test_a_sweep_replays_every_policy_at_every_size(runner: CliRunner, tmp_path: Path) -> None:
    path = trace_file(tmp_path, *busy())
    document = run_json(
        runner, str(path), "--nodes", "2", "--policy", "fifo", "--policy", "las",
        "--scale", "0.5", "--scale", "1", "--no-backfill",
    )  # fmt: skip
    runs = [(r["scale"], r["policy"], r["cluster"]["gpus"]["V100"]) for r in document["runs"]]
    assert runs == [(0.5, "fifo", 8), (0.5, "las", 8), (1.0, "fifo", 16), (1.0, "las", 16)]
    assert all(r["backfill"] is False and r["budgets"] is False for r in document["runs"])
    for run in document["runs"]:
        assert run["metrics"]["finished"] == 12
        assert run["metrics"]["jct"]["mean"] >= run["metrics"]["jct_mean_bound"] == 1800.0
    small, large = document["runs"][0]["metrics"], document["runs"][2]["metrics"]
    assert small["wait"]["mean"] > large["wait"]["mean"]


def test_the_table_compares_policies_with_the_limits(runner: CliRunner, tmp_path: Path) -> None:
    path = trace_file(tmp_path, *busy())
    result = simulate(runner, str(path), "--nodes", "1", "--policy", "fair-share")
    assert result.exit_code == 0, result.output
    assert "jobs.csv: 12 jobs, backfill, quotas, no budgets" in result.stdout
    assert "fair-share" in result.stdout and "12/12" in result.stdout
    assert "Limits no schedule can beat" in result.stdout
    assert "mean JCT 30m if every job started on arrival" in result.stdout


def test_the_report_is_self_contained(runner: CliRunner, tmp_path: Path) -> None:
    path = trace_file(tmp_path, *busy())
    report = tmp_path / "out" / "plan.html"
    report.parent.mkdir()
    args = [str(path), "--nodes", "2", "--policy", "fifo", "--policy", "las", "--scale", "0.5"]
    result = simulate(runner, *args, "--scale", "1", "--report", str(report))
    assert result.exit_code == 0, result.output
    assert f"Report: {report}" in result.stdout
    page = report.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert page.count("<svg") == 4 * 2  # utilisation, queue, JCT, fairness per size


def test_without_a_cluster_one_is_sized_for_the_load(runner: CliRunner, tmp_path: Path) -> None:
    records = [TraceRecord(f"j{k}", "p", k * 360.0, 1, 3600.0) for k in range(10)]
    path = trace_file(tmp_path, *records)
    # 36,000 GPU-seconds over 3,240 s of submits: 11.1 GPUs; at 80 %: 13.9, so 2 nodes
    (run,) = run_json(runner, str(path), "--policy", "fifo")["runs"]
    assert run["cluster"]["gpus"] == {"V100": 16}
    (run,) = run_json(runner, str(path), "--policy", "fifo", "--load", "0.5")["runs"]
    assert run["cluster"]["gpus"] == {"V100": 24}


def test_cluster_and_awards_files(runner: CliRunner, tmp_path: Path) -> None:
    path = trace_file(
        tmp_path, *(TraceRecord(f"j{k}", f"vc{k % 2}", 0, 2, 600, "H100") for k in range(4))
    )
    cluster = tmp_path / "lab.yaml"
    cluster.write_text("node_groups:\n  - {gpu_type: H100, nodes: 1}\n")
    awards = tmp_path / "awards.yaml"
    awards.write_text("awards:\n  - {project: alpha, tenants: [vc0, vc1], quotas: {H100: 8}}\n")
    document = run_json(runner, str(path), "--cluster", str(cluster), "--awards", str(awards),
                        "--policy", "fair-share")  # fmt: skip
    (run,) = document["runs"]
    assert run["cluster"] == {"name": "lab", "nodes": 1, "gpus": {"H100": 8}}
    assert [p["project"] for p in run["metrics"]["projects"]] == ["alpha"]
    assert document["awards"] == "awards.yaml"


def test_a_helios_capacity_table_gives_the_awards(runner: CliRunner, tmp_path: Path) -> None:
    path = trace_file(tmp_path, *busy(6))
    table = tmp_path / "cluster_gpu_number.csv"
    table.write_text("date,vcA,vcB,total\n2020-04-01,30,10,40\n")
    document = run_json(
        runner, str(path), "--nodes", "2", "--awards", str(table), "--policy", "fifo"
    )
    projects = {p["project"]: p["jobs"] for p in document["runs"][0]["metrics"]["projects"]}
    assert projects == {"vcA": 2, "vcB": 2, "vc2": 2}  # the third tenant gets a default award


def test_a_capacity_table_is_read_on_the_day_asked(runner: CliRunner, tmp_path: Path) -> None:
    """On 2020-04-02 vcB owns no GPUs, so only vcA is an award (the busiest tenant joins it)
    and the other tenants get default awards; a day the table lacks exits 2, naming its span."""
    path = trace_file(tmp_path, *busy(6))
    table = tmp_path / "cluster_gpu_number.csv"
    table.write_text("date,vcA,vcB,total\n2020-04-01,30,10,40\n2020-04-02,40,0,40\n")
    document = run_json(
        runner, str(path), "--nodes", "2", "--awards", str(table), "--awards-day",
        "2020-04-02", "--policy", "fifo",
    )  # fmt: skip
    projects = {p["project"] for p in document["runs"][0]["metrics"]["projects"]}
    assert projects == {"vcA", "vc1", "vc2"}
    assert "2020-04-02" in document["awards"]
    wrong = simulate(runner, str(path), "--nodes", "2", "--awards", str(table),
                     "--awards-day", "2021-01-01")  # fmt: skip
    assert wrong.exit_code == 2
    assert "2020-04-01 to 2020-04-02" in wrong.stderr


def test_grace_and_minimum_runtime_are_options(runner: CliRunner, tmp_path: Path) -> None:
    """The job defaults a planner sets reach the replay and the JSON; a bad one exits 2."""
    path = trace_file(tmp_path, *busy(6))
    document = run_json(
        runner, str(path), "--nodes", "2", "--policy", "fifo", "--min-runtime", "30m",
        "--grace", "2m",
    )  # fmt: skip
    assert (document["options"]["min_runtime"], document["options"]["grace"]) == (1800, 120)
    wrong = simulate(runner, str(path), "--nodes", "2", "--min-runtime", "soon")
    assert wrong.exit_code == 2
    assert "'soon' is not a duration" in wrong.stderr


def test_limit_keeps_the_first_jobs(runner: CliRunner, tmp_path: Path) -> None:
    path = trace_file(tmp_path, *busy())
    document = run_json(runner, str(path), "--nodes", "1", "--policy", "fifo", "--limit", "5")
    assert document["trace"]["jobs"] == 5 and document["runs"][0]["metrics"]["jobs"] == 5


def test_skipped_bad_rows_are_reported_by_line(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text("id,project,submit,gpus,duration\nj1,p,0,1,60\nj2,p,0,0,60\nj3,p,5,1,-1\n")
    result = simulate(runner, str(path), "--nodes", "1", "--bad-rows", "skip", "--output", "json")
    assert result.exit_code == 0, result.output
    assert "Skipped 2 bad rows of jobs.csv:" in result.stderr
    assert "line 3: gpus must be at least 1, got 0" in result.stderr
    assert "line 4: duration cannot be negative" in result.stderr
    assert json.loads(result.stdout)["trace"]["skipped"] == 2
    rejected = simulate(runner, str(path), "--nodes", "1")
    assert rejected.exit_code == 2
    assert "line 3: gpus must be at least 1" in rejected.stderr


def test_jobs_larger_than_the_cluster_are_noted(runner: CliRunner, tmp_path: Path) -> None:
    path = trace_file(
        tmp_path, TraceRecord("big", "p", 0, 16, 60), TraceRecord("ok", "p", 0, 1, 60)
    )
    result = simulate(runner, str(path), "--nodes", "1", "--policy", "fifo", "--output", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["runs"][0]["refused"] == 1
    assert "Note: not replayed at x1 (8 GPUs): 1 job larger than the cluster" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "srpt"], "unknown policy 'srpt'"),
        (["--checkpoint-interval", "soon"], "'soon' is not a duration"),
        (["--cluster", "lab.yaml"], "give --cluster or --nodes, not both"),
        (["--scale", "0"], "a scale must be positive (got 0)"),
        (["--walltime-factor", "0.5"], "the walltime factor must be at least 1"),
        (["--awards", "nowhere.yaml"], "cannot read nowhere.yaml"),
        (["--format", "slurm"], "unknown trace format 'slurm'"),
        (["--report", "out/plan.html"], "cannot write out/plan.html: there is no folder out"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    runner: CliRunner,
    tmp_path: Path,
    args: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    path = trace_file(tmp_path, *busy(3))
    result = simulate(runner, str(path), "--nodes", "1", *args)
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())


def test_a_bad_cluster_file_is_named(runner: CliRunner, tmp_path: Path) -> None:
    path = trace_file(tmp_path, *busy(3))
    cluster = tmp_path / "lab.yaml"
    cluster.write_text("node_groups: []\n")
    result = simulate(runner, str(path), "--cluster", str(cluster))
    assert result.exit_code == 2
    assert f"Error: {cluster}: node_groups: a cluster spec needs a list" in result.stderr


def test_a_missing_trace_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    result = simulate(runner, str(tmp_path / "none.csv"), "--nodes", "1")
    assert result.exit_code == 2
    assert "cannot read" in result.stderr


def test_jobs_a_budget_never_lets_run_are_noted(runner: CliRunner, tmp_path: Path) -> None:
    path = trace_file(
        tmp_path, TraceRecord("j1", "vc1", 0, 1, 600), TraceRecord("j2", "vc2", 0, 1, 600)
    )
    awards = tmp_path / "awards.yaml"
    awards.write_text(
        "awards:\n  - {project: poor, tenants: [vc1], quotas: {V100: 4}, gpu_hours: {V100: 0.01}}\n"
        "  - {project: rich, tenants: [vc2], quotas: {V100: 4}, gpu_hours: {V100: 100}}\n"
    )
    args = [str(path), "--nodes", "1", "--awards", str(awards), "--policy", "fifo", "--budgets"]
    result = simulate(runner, *args, "--output", "json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["runs"][0]["metrics"]
    assert (metrics["finished"], metrics["never_started"]) == (1, 1)
    assert "Note: fifo (budgets) at x1: 1 job never finished" in result.stderr
