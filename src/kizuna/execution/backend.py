"""The backend protocol (ADR 0021): what the live loop asks of whatever runs jobs.

B1. `submit(launch)` starts a gang; `launch.key` is the caller's idempotency key (job id and
    run segment): submitting a key again returns the run it started, never a second one,
    also after the service restarted (B6).
B2. `status(key)` says whether the gang runs or how it ended, with each rank's exit code and
    the instants it started and ended.
B3. `cancel(key, grace, signal)` sends every rank the checkpoint signal (SIGTERM unless the job
    asks for another, as Slurm's `--signal`) and returns at once; ranks still there `grace`
    seconds later are killed (SIGKILL) at the next `status` or `cancel`.
B4. `logs(key, rank)` names the file a rank writes its stdout and stderr to.
B5. One rank failing fails the gang: the others get the checkpoint signal, then are killed.
B6. A run the backend cannot account for (half started when the service died, or its node
    is gone) is `LOST`; a run it knows of but never started raises `KeyError` on `status`.
B7. Optional: a backend may call back (`on_exit(key)`) when a rank of a run ends, so the live
    loop wakes at once instead of at its next timer tick; status is still read by `status`.
B8. Optional (`HasInventory`): a backend that knows its machines says which nodes it has now,
    with their GPUs, GPU type and topology, and whether each is alive; the live loop keeps
    the store's nodes in step with it (live/inventory.py).
"""

from __future__ import annotations

import os
import signal as signals
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable


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
    workdir: Path | None = None
    """Where the command runs; None: the backend's own folder for the run."""


class RunState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    """Ended by `cancel` (a preemption, a cancellation or the walltime)."""
    LOST = "lost"
    """The backend cannot account for the run (B6)."""


@dataclass(frozen=True)
class RunStatus:
    key: str
    state: RunState
    exit_codes: tuple[int | None, ...]
    """Per rank; None while it runs. A negative code is the signal that ended it."""
    started_at: float | None = None
    """Seconds since the epoch when the gang was started."""
    ended_at: float | None = None
    """When its last rank ended; None while any runs."""


SIGNALS: Mapping[str, signals.Signals] = {
    "TERM": signals.SIGTERM,
    "INT": signals.SIGINT,
    "USR1": signals.SIGUSR1,
    "USR2": signals.SIGUSR2,
    "HUP": signals.SIGHUP,
}
"""The checkpoint signals a job may ask for, by Slurm's names."""


def torchrun_env(launch: Launch, master_addr: str, master_port: int) -> list[dict[str, str]]:
    """Each rank's environment as `torchrun` gives it and PyTorch DDP expects: RANK,
    LOCAL_RANK (the rank's place among the ranks of its node), WORLD_SIZE, LOCAL_WORLD_SIZE,
    MASTER_ADDR (rank 0's node), MASTER_PORT, CUDA_VISIBLE_DEVICES (the GPU indices the
    scheduler gave it) and KIZUNA_CHECKPOINT_DIR, over the launch's own variables."""
    per_node = Counter(rank.node for rank in launch.ranks)
    seen: Counter[str] = Counter()
    out = []
    for index, rank in enumerate(launch.ranks):
        out.append(
            {
                **launch.env,
                "RANK": str(index),
                "WORLD_SIZE": str(len(launch.ranks)),
                "LOCAL_RANK": str(seen[rank.node]),
                "LOCAL_WORLD_SIZE": str(per_node[rank.node]),
                "MASTER_ADDR": master_addr,
                "MASTER_PORT": str(master_port),
                "CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in rank.gpus),
                "KIZUNA_CHECKPOINT_DIR": str(launch.checkpoint_dir),
            }
        )
        seen[rank.node] += 1
    return out


def write_atomically(path: Path, data: str) -> None:
    """Writes a temporary file, fsyncs it, renames it over `path`."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


LOST_RANK = object()
"""A rank's code when the backend cannot account for it (B6): no process, no exit record."""
FAILED_GANG_GRACE = 2.0
"""B5: seconds the other ranks of a failed gang get between the checkpoint signal and the kill."""


@dataclass(frozen=True)
class GangCheck:
    """What a gang's ranks say now, and what B5 asks the backend to do about it."""

    state: RunState
    exit_codes: tuple[int | None, ...]
    running: list[int]
    """Ranks still running."""
    kill_at: float | None
    """When the running ranks are to be killed (B3, B5); None: not asked to stop."""
    terminate: bool
    """Send the running ranks the checkpoint signal now: another rank failed or is lost."""
    kill: bool
    """Kill the running ranks now: their deadline passed."""


def check_gang(
    codes: list[int | object | None], cancelled: bool, kill_at: float | None, now: float
) -> GangCheck:
    """B5 and B6 for every backend: `codes` are the ranks' exit codes (None: runs;
    `LOST_RANK`: unaccounted for), `kill_at` the deadline set so far (by a cancel, B3, or an
    earlier check). A failed rank gives the others `FAILED_GANG_GRACE` seconds, a lost one
    none; a gang ends only when no rank runs."""
    lost = any(c is LOST_RANK for c in codes)
    running = [i for i, c in enumerate(codes) if c is None]
    failed = any(isinstance(c, int) and c != 0 for c in codes)
    terminate = bool(running) and (lost or failed) and kill_at is None
    if terminate:
        kill_at = now + (0.0 if lost else FAILED_GANG_GRACE)
    kill = bool(running) and kill_at is not None and now >= kill_at
    if running:
        state = RunState.RUNNING
    elif lost:
        state = RunState.LOST
    elif cancelled:
        state = RunState.STOPPED
    else:
        state = RunState.SUCCEEDED if all(c == 0 for c in codes) else RunState.FAILED
    exit_codes = tuple(c if isinstance(c, int) else None for c in codes)
    return GangCheck(state, exit_codes, running, kill_at, terminate, kill)


@dataclass(frozen=True)
class NodeFact:
    """One node as a backend sees it (B8)."""

    name: str
    gpu_type: str
    gpus: int
    nvlink_domain: str
    rack: str
    alive: bool


@runtime_checkable
class HasInventory(Protocol):
    """B8: a backend that can say which nodes it has."""

    def nodes(self) -> list[NodeFact]: ...


class Backend(Protocol):
    def submit(self, launch: Launch) -> RunStatus: ...

    def status(self, key: str) -> RunStatus: ...

    def cancel(self, key: str, grace: float, signal: str = "TERM") -> None: ...

    def logs(self, key: str, rank: int) -> Path: ...
