"""`kizuna demo` and `kizuna --version`, as a user or a script runs them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from kizuna import __version__
from kizuna.cli.main import app
from kizuna.scheduling import POLICIES, ReasonCode

SMALL = ["demo", "--jobs", "40", "--nodes", "4", "--seed", "5"]


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


def run_json(runner: CliRunner, *extra: str) -> dict[str, Any]:
    result = runner.invoke(app, [*SMALL, "--output", "json", *extra])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_demo_prints_the_comparison_and_the_pending_reasons(runner: CliRunner) -> None:
    result = runner.invoke(app, SMALL, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Policies compared on the same workload" in out
    for name in POLICIES:
        assert name in out
    assert "40/40" in out  # every job finished under every policy
    assert "Why is it pending?" in out
    assert any(f" {code.value} " in out for code in ReasonCode)


def test_json_has_metrics_for_every_policy(runner: CliRunner) -> None:
    document = run_json(runner)
    assert [p["policy"] for p in document["policies"]] == list(POLICIES)
    for entry in document["policies"]:
        assert entry["backfill"] is True
        metrics = entry["metrics"]
        assert metrics["jobs"] == metrics["finished"] == 40
        assert metrics["jct"]["p95"] >= metrics["jct"]["p50"] > 0
        assert 0 < metrics["utilisation"] <= 1
        assert {"jct", "wait", "slowdown", "preemptions", "makespan"} <= metrics.keys()
    assert document["jobs"] == 40 and document["seed"] == 5


def test_json_explains_the_busiest_moment(runner: CliRunner) -> None:
    pending = run_json(runner)["pending"]
    assert pending["policy"] == next(iter(POLICIES))
    assert pending["waiting"] > 0
    assert len(pending["jobs"]) == min(10, pending["waiting"])
    assert sum(pending["reasons"].values()) == pending["waiting"]
    codes = {code.value for code in ReasonCode}
    for row in pending["jobs"]:
        assert row["reason"] in codes and row["message"]


def test_chosen_policies_run_once_each_in_the_order_given(runner: CliRunner) -> None:
    document = run_json(runner, "--policy", "las", "--policy", "fifo", "--policy", "las")
    assert [p["policy"] for p in document["policies"]] == ["las", "fifo"]
    assert document["pending"]["policy"] == "las"


def test_the_same_seed_gives_the_same_document(runner: CliRunner) -> None:
    assert run_json(runner, "--policy", "fifo") == run_json(runner, "--policy", "fifo")
    other = runner.invoke(app, ["demo", "--jobs", "40", "--nodes", "4", "--seed", "6",
                                "--output", "json", "--policy", "fifo"])  # fmt: skip
    assert json.loads(other.stdout)["policies"] != run_json(runner, "--policy", "fifo")["policies"]


def test_an_unknown_policy_is_refused_with_the_known_ones(runner: CliRunner) -> None:
    result = runner.invoke(app, [*SMALL, "--policy", "fifo", "--policy", "srpt"])
    assert result.exit_code == 2
    assert "unknown policy 'srpt'" in result.stderr
    assert "fair-share, fifo, las" in result.stderr


@pytest.mark.parametrize(
    "args", [["--jobs", "0"], ["--nodes", "0"], ["--output", "yaml"], ["--seed", "x"]]
)
def test_bad_options_exit_2(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(app, ["demo", *args])
    assert result.exit_code == 2


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"kizuna {__version__}"
