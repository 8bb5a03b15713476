"""The local executor: each rank a process group on this machine (ADR 0021).

Ranks get the environment `torchrun` gives and PyTorch DDP expects: RANK, LOCAL_RANK (the
rank's place among the ranks of its node), WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR (rank 0's
node; here 127.0.0.1), MASTER_PORT (free on loopback), CUDA_VISIBLE_DEVICES (the GPU indices the
scheduler gave it; on a machine without GPUs these are virtual slots, and a job on the CPU
ignores them), and KIZUNA_CHECKPOINT_DIR. Each rank writes stdout and stderr to
`<root>/<key>/rank-<n>.log`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from kizuna.execution.backend import Launch, RunState, RunStatus

KILL_POLL = 0.05


@dataclass
class _Run:
    launch: Launch
    processes: list[subprocess.Popen[bytes]]
    cancelled: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class LocalExecutor:
    """Runs gangs as local process groups; keeps what it started by idempotency key."""

    def __init__(self, root: Path, master_addr: str = "127.0.0.1") -> None:
        self.root, self.master_addr = root, master_addr
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()

    def submit(self, launch: Launch) -> RunStatus:
        """B1."""
        with self._lock:
            if launch.key not in self._runs:
                self._runs[launch.key] = _Run(launch, self._start(launch))
        return self.status(launch.key)

    def _start(self, launch: Launch) -> list[subprocess.Popen[bytes]]:
        folder = self.root / launch.key
        folder.mkdir(parents=True, exist_ok=True)
        launch.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        port = free_port(self.master_addr)
        per_node = Counter(rank.node for rank in launch.ranks)
        seen: Counter[str] = Counter()
        processes = []
        for index, rank in enumerate(launch.ranks):
            env = {
                **os.environ,
                **launch.env,
                "RANK": str(index),
                "WORLD_SIZE": str(len(launch.ranks)),
                "LOCAL_RANK": str(seen[rank.node]),
                "LOCAL_WORLD_SIZE": str(per_node[rank.node]),
                "MASTER_ADDR": self.master_addr,
                "MASTER_PORT": str(port),
                "CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in rank.gpus),
                "KIZUNA_CHECKPOINT_DIR": str(launch.checkpoint_dir),
            }
            seen[rank.node] += 1
            with open(self.logs(launch.key, index), "ab") as log:
                processes.append(
                    subprocess.Popen(
                        launch.command,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
        return processes

    def status(self, key: str) -> RunStatus:
        """B2, and B5: a rank that failed stops the others."""
        run = self._run(key)
        codes = tuple(p.poll() for p in run.processes)
        if not run.cancelled and any(c not in (None, 0) for c in codes) and None in codes:
            self._stop(run, grace=0.0)
            codes = tuple(p.wait() for p in run.processes)
        return RunStatus(key, _state(codes, run.cancelled), codes)

    def cancel(self, key: str, grace: float) -> None:
        """B3."""
        run = self._run(key)
        run.cancelled = True
        self._stop(run, grace)

    def logs(self, key: str, rank: int) -> Path:
        """B4."""
        return self.root / key / f"rank-{rank}.log"

    def wait(self, key: str, timeout: float) -> RunStatus:
        """Blocks until the gang ended or `timeout` seconds passed (tests and tools)."""
        deadline = time.monotonic() + timeout
        while (found := self.status(key)).state is RunState.RUNNING:
            if time.monotonic() > deadline:
                return found
            time.sleep(KILL_POLL)
        return found

    def _run(self, key: str) -> _Run:
        with self._lock:
            found = self._runs.get(key)
        if found is None:
            raise KeyError(f"no run {key!r} on this executor")
        return found

    @staticmethod
    def _stop(run: _Run, grace: float) -> None:
        with run.lock:
            _signal(run.processes, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while any(p.poll() is None for p in run.processes) and time.monotonic() < deadline:
                time.sleep(KILL_POLL)
            _signal(run.processes, signal.SIGKILL)
            for process in run.processes:
                process.wait()


def _state(codes: tuple[int | None, ...], cancelled: bool) -> RunState:
    if None in codes:
        return RunState.RUNNING
    if cancelled:
        return RunState.STOPPED
    return RunState.SUCCEEDED if all(c == 0 for c in codes) else RunState.FAILED


def _signal(processes: list[subprocess.Popen[bytes]], sig: signal.Signals) -> None:
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)  # the rank and whatever it started


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on at `address` now (for MASTER_PORT, test servers)."""
    with socket.socket() as s:
        s.bind((address, 0))
        port: int = s.getsockname()[1]
        return port
