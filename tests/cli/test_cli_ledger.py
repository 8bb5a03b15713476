"""`kizuna balance`, `usage`, `logs` and `submit --signal/--chdir/--no-requeue` against a real
service that runs its scheduling loop and the local executor, as a shell would drive them."""

from __future__ import annotations

import csv
import io
import json
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
import uvicorn
from typer.testing import CliRunner, Result

from kizuna.api.app import create_app
from kizuna.cli.jobs import checkpoint_signal
from kizuna.cli.main import app
from kizuna.config import Settings

UNSET = {"KIZUNA_PROJECT": None, "KIZUNA_GPU_TYPE": None, "KIZUNA_DATABASE_URL": None}
LINES = 5
PRINTS = (
    "import sys, time\n"
    f"for i in range({LINES}):\n"
    "    print(f'line {i}', flush=True)\n"
    "    print(f'err {i}', file=sys.stderr, flush=True)\n"
    "    time.sleep(0.2)\n"
)


class Live:
    def __init__(self, home: Path, url: str, runner: CliRunner) -> None:
        self.home, self.url, self.runner = home, url, runner

    def __call__(self, *args: str, code: int = 0) -> Result:
        env = {**UNSET, "KIZUNA_HOME": str(self.home), "KIZUNA_URL": self.url, "COLUMNS": "200"}
        result = self.runner.invoke(app, list(args), env=env)
        assert result.exit_code == code, (
            f"kizuna {' '.join(args)} -> {result.exit_code}, not {code}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{result.exception!r}"
        )
        return result

    def json(self, *args: str) -> Any:
        at = args.index("--") if "--" in args else len(args)
        return json.loads(self(*args[:at], "--output", "json", *args[at:]).stdout)

    def submit(self, *options: str) -> int:
        made = self.json("submit", "-A", "acme/llm", "--gpu-type", "cpu", "-t", "60", *options,
                         "--", sys.executable, "-c", PRINTS)  # fmt: skip
        job: int = made["id"]
        return job

    def wait_ended(self, job: int, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown: dict[str, Any] = self.json("show", str(job))
            if shown["ended_at"]:
                return shown
            time.sleep(0.2)
        raise AssertionError(f"job {job} did not end")


def day(offset: int) -> str:
    return (datetime.now(UTC) + timedelta(days=offset)).date().isoformat()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """A service with its loop (ticking every 0.1 s), a project with a CPU award, one node
    of 2 virtual GPU slots."""
    home = tmp_path / "kizuna"
    application = create_app(Settings(home=home, loop_every=0.1))
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    kizuna = Live(home, f"http://127.0.0.1:{port}", CliRunner())
    kizuna("admin", "bootstrap", "--email", "admin@office.example", "--name", "Ada")
    kizuna("org", "create", "acme", "--kind", "startup")
    kizuna("project", "create", "acme/llm")
    kizuna("node", "add", "n0", "--gpu-type", "cpu", "--gpus", "2")
    kizuna("award", "grant", "acme/llm", "--gpu-type", "cpu", "--gpu-hours", "10",
           "--nominal-gpus", "2", "--starts", day(-1), "--ends", day(30))  # fmt: skip
    try:
        yield kizuna
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def test_logs_follow_a_job_from_pending_to_its_end_then_print_whole(live: Live) -> None:
    job = live.submit()
    followed = live("logs", str(job), "--follow")
    expected = "".join(f"line {i}\nerr {i}\n" for i in range(LINES))
    assert followed.stdout == expected
    live.wait_ended(job)
    assert live("logs", str(job)).stdout == expected
    assert live("logs", str(job), "--run", "1", "-r", "0").stdout == expected
    assert live("logs", str(job), "--rank", "1", code=3).stderr.startswith("Error: no rank 1")
    assert live("logs", "999", code=3).stderr.startswith("Error: no job 999")


def test_submit_sends_the_checkpoint_signal_and_the_folder(live: Live, tmp_path: Path) -> None:
    shown = live.wait_ended(live.submit("--signal", "USR1@5"))
    assert (shown["signal"], shown["grace"], shown["workdir"]) == ("USR1", 5, str(Path.cwd()))
    shown = live.wait_ended(live.submit("--chdir", str(tmp_path)))
    assert (shown["signal"], shown["grace"], shown["workdir"]) == ("TERM", 30, str(tmp_path))
    assert shown["state"] == "succeeded"  # it ran in that folder
    bad = live("submit", "-A", "acme/llm", "--signal", "KILL", "--", "true", code=2)
    assert "--signal" in bad.stderr


def test_submit_asks_to_be_requeued_or_not_as_sbatch(live: Live) -> None:
    assert live.json("show", str(live.submit()))["requeue"] is True
    shown = live.wait_ended(live.submit("--no-requeue"))
    assert (shown["requeue"], shown["state"]) == (False, "succeeded")


@pytest.mark.parametrize(
    ("given", "expected"),
    [("USR1@60", ("USR1", 60)), ("sigterm", ("TERM", 30)), ("10@90", ("USR1", 90))],
)
def test_a_checkpoint_signal_is_read_as_sbatch_reads_it(
    given: str, expected: tuple[str, int]
) -> None:
    assert checkpoint_signal(given) == expected


@pytest.mark.parametrize("given", ["KILL", "USR1@", "USR1@x", "TERM@3601", "99"])
def test_a_bad_checkpoint_signal_is_refused(given: str) -> None:
    with pytest.raises(typer.BadParameter):
        checkpoint_signal(given)


def test_balance_and_usage_show_what_the_run_was_charged(live: Live) -> None:
    job = live.submit()
    live.wait_ended(job)
    (balance,) = live.json("balance")
    assert balance["project"] == "acme/llm" and balance["granted_gpu_hours"] == 10
    charged = balance["charged_gpu_ms"]
    assert 0 < charged < 30_000  # one slot for about a second
    assert balance["available_gpu_ms"] == 10 * 3_600_000 - charged
    table = live("balance", "--project", "acme/llm").stdout.splitlines()
    assert table[0].split() == [
        "AWARD", "PROJECT", "GPU_TYPE", "GRANTED", "USED", "HELD", "AVAILABLE", "BURN/DAY",
        "RUNS_OUT", "ENDS",
    ]  # fmt: skip
    assert table[1].split()[1:4] == ["acme/llm", "cpu", "10.000"]
    (line,) = live.json("usage")
    assert line == {
        "group": {"project": "acme/llm"},
        "period": None,
        "runs": 1,
        "gpu_hours": round(charged / 3_600_000, 3),
        "gpu_ms": charged,
    }
    by = ("--by", "organization", "--by", "gpu-type", "--period", "day")
    (line,) = live.json("usage", *by, "--since", day(0))
    assert line["group"] == {"organization": "acme", "gpu_type": "cpu"}
    assert line["period"] == day(0)
    assert live.json("usage", "--until", day(0)) == []
    rows = list(csv.reader(io.StringIO(live("usage", *by, "--output", "csv").stdout)))
    assert rows == [
        ["organization", "gpu_type", "period", "runs", "gpu_hours", "gpu_ms"],
        ["acme", "cpu", day(0), "1", str(line["gpu_hours"]), str(charged)],
    ]
    table = live("usage", *by).stdout.splitlines()
    assert "1 runs" in table[0]
    assert table[2].split()[:4] == ["acme", "cpu", day(0), "1"]
    refused = live("usage", "--since", "yesterday", code=2)
    assert "--since" in refused.stderr
