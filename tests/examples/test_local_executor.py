"""The local executor runs gangs as process groups with torchrun's environment: the example
job (examples/ddp_train.py, two gloo ranks, real PyTorch on the CPU) end to end, stopped by its
checkpoint signal in the middle and resumed to the weights an uninterrupted run ends with;
idempotent submission; one failed rank fails the gang; logs per rank."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from kizuna.execution.backend import Launch, Rank, RunState
from kizuna.execution.local import LocalExecutor

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ddp_train.py"
STEPS = 40
TWO_RANKS = (Rank("local", (0,)), Rank("local", (1,)))
Executors = Callable[[], LocalExecutor]


@pytest.fixture
def executors(tmp_path: Path) -> Iterator[Executors]:
    """Executors on one runs folder. The ranks they started are killed and reaped when the
    test ends, even when it failed half-way, so none outlives it (or warns in a later test)."""
    made: list[LocalExecutor] = []

    def make() -> LocalExecutor:
        made.append(LocalExecutor(tmp_path / "runs"))
        return made[-1]

    yield make
    for executor in made:
        for run in executor._runs.values():
            for child in run.children.values():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()


def ddp(key: str, folder: Path, *extra: str) -> Launch:
    command = (sys.executable, str(EXAMPLE), "--steps", str(STEPS), *extra)
    return Launch(key, command, TWO_RANKS, folder)


def logs(executor: LocalExecutor, key: str) -> str:
    """Every rank's log, for a failed assertion to show."""
    return "\n".join(f"rank {r}: {executor.logs(key, r).read_text()}" for r in range(2))


def test_the_ddp_example_is_preempted_with_grace_and_resumes(
    tmp_path: Path, executors: Executors
) -> None:
    executor = executors()
    whole = executor.wait(executor.submit(ddp("whole", tmp_path / "a")).key, 120)
    assert (whole.state, whole.exit_codes) == (RunState.SUCCEEDED, (0, 0)), logs(executor, "whole")

    folder = tmp_path / "b"
    executor.submit(ddp("job-1.0", folder, "--step-seconds", "0.05", "--checkpoint-every", "5"))
    deadline = time.monotonic() + 60
    while not (folder / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    executor.cancel("job-1.0", grace=30)  # returns at once; the ranks checkpoint and exit
    stopped = executor.wait("job-1.0", 60)
    assert (stopped.state, stopped.exit_codes) == (RunState.STOPPED, (143, 143)), logs(
        executor, "job-1.0"
    )
    assert not (folder / "result.json").exists()
    stopped_at = torch.load(folder / "checkpoint.pt", weights_only=True)["step"]
    assert 0 < stopped_at < STEPS  # it did stop in the middle, and resumes from there

    resumed = executor.wait(executor.submit(ddp("job-1.1", folder)).key, 120)
    assert resumed.state is RunState.SUCCEEDED, logs(executor, "job-1.1")
    assert json.loads((folder / "result.json").read_text()) == json.loads(
        (tmp_path / "a" / "result.json").read_text()
    )
    assert "starting at step 0" not in executor.logs("job-1.1", 0).read_text()
    assert json.loads((tmp_path / "a" / "result.json").read_text())["steps"] == STEPS


def test_a_key_submitted_twice_is_one_run_and_ranks_see_their_environment(
    tmp_path: Path, executors: Executors
) -> None:
    executor = executors()
    show = (
        "import os; print(*(os.environ[k] for k in ('RANK', 'LOCAL_RANK', 'WORLD_SIZE',"
        " 'MASTER_ADDR', 'CUDA_VISIBLE_DEVICES', 'KIZUNA_CHECKPOINT_DIR')))"
    )
    ranks = (Rank("n0", (4, 5)), Rank("n0", (6, 7)), Rank("n1", (0, 1)))
    launch = Launch("env", (sys.executable, "-c", show), ranks, tmp_path / "ckpt")
    executor.submit(launch)
    executor.submit(launch)  # the same key: no second gang (its lines would double the logs)
    assert executor.wait("env", 30).state is RunState.SUCCEEDED
    lines = [executor.logs("env", r).read_text().split() for r in range(3)]
    ckpt = str(tmp_path / "ckpt")
    assert lines == [
        ["0", "0", "3", "127.0.0.1", "4,5", ckpt],
        ["1", "1", "3", "127.0.0.1", "6,7", ckpt],
        ["2", "0", "3", "127.0.0.1", "0,1", ckpt],
    ]


def test_one_failed_rank_fails_the_gang(tmp_path: Path, executors: Executors) -> None:
    executor = executors()
    code = "import os, sys, time; sys.exit(3) if os.environ['RANK'] == '1' else time.sleep(60)"
    executor.submit(Launch("bad", (sys.executable, "-c", code), TWO_RANKS, tmp_path / "c"))
    ended = executor.wait("bad", 30)
    assert ended.state is RunState.FAILED
    assert ended.exit_codes[1] == 3 and ended.exit_codes[0] == -15  # stopped with SIGTERM


def test_a_new_executor_adopts_runs_from_disk_and_never_starts_a_key_twice(
    tmp_path: Path, executors: Executors
) -> None:
    """B6: after the service dies, a new executor on the same folder finds its runs: it
    sees them run, stops them with their checkpoint signal and reads their exit codes; a
    submit of the same key does not start a second gang."""
    code = "import time; print('up', flush=True); time.sleep(60)"
    launch = Launch("adopt", (sys.executable, "-c", code), TWO_RANKS, tmp_path / "c")
    first = executors()
    first.submit(launch)
    deadline = time.monotonic() + 60
    while not all("up" in first.logs("adopt", r).read_text() for r in (0, 1)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = executors()  # the first one is gone, its ranks are not
    assert second.submit(launch).state is RunState.RUNNING
    second.cancel("adopt", grace=10)
    ended = executors().wait("adopt", 30)
    assert (ended.state, ended.exit_codes) == (RunState.STOPPED, (-15, -15))
    assert ended.ended_at is not None and ended.started_at is not None
    assert ended.started_at <= ended.ended_at
    assert second.logs("adopt", 0).read_text().count("up") == 1  # started once
    assert first.wait("adopt", 10).exit_codes == (-15, -15)  # its own children agree


def test_a_command_that_does_not_exist_fails_with_127(tmp_path: Path, executors: Executors) -> None:
    executor = executors()
    launch = Launch("nope", ("/nonexistent/train",), TWO_RANKS[:1], tmp_path / "c")
    ended = executor.wait(executor.submit(launch).key, 30)
    assert (ended.state, ended.exit_codes) == (RunState.FAILED, (127,))
    assert "cannot start" in executor.logs("nope", 0).read_text()


def test_a_rank_that_died_before_recording_its_pid_is_found_by_its_command_line(
    tmp_path: Path, executors: Executors
) -> None:
    """B6: the service killed between starting a rank and the rank writing its pid file: a
    new executor finds the rank by its command line, instead of calling the run lost and
    letting it run on beside a second copy."""
    code = "import time; print('up', flush=True); time.sleep(60)"
    launch = Launch("half", (sys.executable, "-c", code), TWO_RANKS, tmp_path / "c")
    first = executors()
    first.submit(launch)
    folder = tmp_path / "runs" / "half"
    deadline = time.monotonic() + 60
    while not all("up" in first.logs("half", r).read_text() for r in (0, 1)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    (folder / "rank-1.pid").unlink()  # as if the service died before the rank wrote it
    second = executors()
    assert second.status("half").state is RunState.RUNNING
    second.cancel("half", grace=10)
    assert second.wait("half", 30).exit_codes == (-15, -15)  # both ranks were reached
    assert first.wait("half", 10).state is RunState.STOPPED
