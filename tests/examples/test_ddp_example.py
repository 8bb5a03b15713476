"""The example training job (examples/ddp_train.py): two gloo ranks on 127.0.0.1, stopped by
the checkpoint signal in the middle and started again, end exactly where an uninterrupted run
ends. Real PyTorch on the CPU; nothing is faked."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ddp_train.py"
STEPS = 40
WORLD = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start(folder: Path, *extra: str) -> list[subprocess.Popen[bytes]]:
    """The gang: one process per rank, with the environment torchrun would give it."""
    port = str(free_port())
    ranks = []
    for rank in range(WORLD):
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(WORLD),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "KIZUNA_CHECKPOINT_DIR": str(folder),
        }
        command = [sys.executable, str(EXAMPLE), "--steps", str(STEPS), *extra]
        ranks.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL))
    return ranks


def finish(ranks: list[subprocess.Popen[bytes]]) -> list[int]:
    return [rank.wait(timeout=120) for rank in ranks]


def result(folder: Path) -> dict[str, object]:
    found: dict[str, object] = json.loads((folder / "result.json").read_text())
    return found


def test_a_job_stopped_by_its_checkpoint_signal_resumes_to_the_same_result(
    tmp_path: Path,
) -> None:
    whole = tmp_path / "whole"
    assert finish(start(whole)) == [0, 0]

    split = tmp_path / "split"
    ranks = start(split, "--step-seconds", "0.05", "--checkpoint-every", "5")
    deadline = time.monotonic() + 60
    while not (split / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    for rank in ranks:
        rank.send_signal(signal.SIGTERM)
    assert finish(ranks) == [143, 143]
    assert not (split / "result.json").exists()
    stopped_at = torch.load(split / "checkpoint.pt", weights_only=True)["step"]
    assert 0 < stopped_at < STEPS  # it did stop in the middle, and will resume from there

    assert finish(start(split)) == [0, 0]
    assert result(split) == result(whole)
    assert result(whole)["steps"] == STEPS
