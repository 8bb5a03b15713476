"""The backend protocol (ADR 0021): what the live loop asks of whatever runs jobs.

B1. `submit(launch)` starts a gang; `launch.key` is the caller's idempotency key (job id and
    run segment): submitting a key again returns the run it started, never a second one.
B2. `status(key)` says whether the gang runs or how it ended, with each rank's exit code.
B3. `cancel(key, grace)` sends every rank the checkpoint signal (SIGTERM, as Slurm's
    `--signal`), waits `grace` seconds, then kills what is left.
B4. `logs(key, rank)` names the file a rank writes its stdout and stderr to.
B5. One rank failing fails the gang: the others are stopped (torchrun's rule).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Rank:
    """One member of a gang: where it runs and which GPUs (indices on its node) it holds."""

    node: str
    gpus: tuple[int, ...]


@dataclass(frozen=True)
class Launch:
    key: str
    command: tuple[str, ...]
    ranks: tuple[Rank, ...]
    checkpoint_dir: Path
    """Stable across a job's runs: the job checkpoints here and resumes from here."""
    env: Mapping[str, str] = field(default_factory=dict)


class RunState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    """Ended by `cancel` (a preemption or a cancellation)."""


@dataclass(frozen=True)
class RunStatus:
    key: str
    state: RunState
    exit_codes: tuple[int | None, ...]
    """Per rank; None while it runs. A negative code is the signal that ended it."""


class Backend(Protocol):
    def submit(self, launch: Launch) -> RunStatus: ...

    def status(self, key: str) -> RunStatus: ...

    def cancel(self, key: str, grace: float) -> None: ...

    def logs(self, key: str, rank: int) -> Path: ...
