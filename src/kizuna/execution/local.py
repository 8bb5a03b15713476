"""The local executor: each rank a process group on this machine (ADR 0021).

Ranks get the environment `torchrun` gives and PyTorch DDP expects: RANK, LOCAL_RANK (the
rank's place among the ranks of its node), WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR (rank 0's
node; here 127.0.0.1), MASTER_PORT (free on loopback), CUDA_VISIBLE_DEVICES (the GPU indices the
scheduler gave it; on a machine without GPUs these are virtual slots, and a job on the CPU
ignores them), and KIZUNA_CHECKPOINT_DIR. Each rank writes stdout and stderr to
`<root>/<key>/rank-<n>.log`.

Everything the executor knows of a run is also on disk in `<root>/<key>/`: `launch.json`
(written before any rank starts, so a key is never started twice), `rank-<n>.pid` and
`rank-<n>.exit` (written by the wrapper each rank runs in, rank.py), `cancel.json`. A new
executor on the same folder, after the service was killed, adopts its runs from these files
(B6): it signals their process groups and reads how they ended.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal as signals
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kizuna.execution.backend import (
    LOST_RANK,
    SIGNALS,
    Launch,
    RunState,
    RunStatus,
    check_gang,
    torchrun_env,
    write_atomically,
)

POLL = 0.05
WRAPPER = str(Path(__file__).with_name("rank.py"))


@dataclass
class _Run:
    key: str
    folder: Path
    ranks: int
    started_at: float
    children: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    """The ranks this executor started itself (adopted runs have none)."""
    cancelled: bool = False
    kill_at: float | None = None
    ended_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class LocalExecutor:
    """Runs gangs as local process groups; keeps what it started by idempotency key."""

    def __init__(
        self,
        root: Path,
        master_addr: str = "127.0.0.1",
        on_exit: Callable[[str], None] | None = None,
    ) -> None:
        self.root, self.master_addr = root, master_addr
        self.on_exit = on_exit
        """Called with a run's key when one of the ranks this executor started exits (B7)."""
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()

    def submit(self, launch: Launch) -> RunStatus:
        """B1: a key already started (by this executor or, per its files, an earlier one on
        the same folder) is never started again."""
        with self._lock:
            if launch.key not in self._runs:
                adopted = self._adopt(launch.key)
                self._runs[launch.key] = adopted or self._start(launch)
        return self.status(launch.key)

    def status(self, key: str) -> RunStatus:
        """B2, with B5 (a failed rank stops the gang) and B3's kill once the grace is over."""
        run = self._run(key)
        with run.lock:
            now = time.time()
            if not run.cancelled:  # another executor on the folder may have cancelled it
                _read_cancel(run)
            codes = [self._code(run, index) for index in range(run.ranks)]
            check = check_gang(codes, run.cancelled, run.kill_at, now)
            run.kill_at = check.kill_at
            if check.terminate:
                self._signal(run, check.running, signals.SIGTERM)  # B5
            if check.kill:
                self._signal(run, check.running, signals.SIGKILL)
            if not check.running and run.ended_at is None:
                run.ended_at = max((self._ended(run, i) for i in range(run.ranks)), default=now)
            return RunStatus(
                key,
                check.state,
                check.exit_codes,
                run.started_at,
                run.ended_at if check.state is not RunState.RUNNING else None,
            )

    def cancel(self, key: str, grace: float, signal: str = "TERM") -> None:
        """B3: the checkpoint signal now; the kill `grace` seconds later (at a later
        `status`), or at once when `grace` is 0. Never blocks."""
        run = self._run(key)
        with run.lock:
            now = time.time()
            kill_at = now + max(0.0, grace)
            if not run.cancelled or run.kill_at is None or kill_at < run.kill_at:
                run.kill_at = kill_at
            run.cancelled = True
            write_atomically(run.folder / "cancel.json", json.dumps({"kill_at": run.kill_at}))
            running = [i for i in range(run.ranks) if self._code(run, i) is None]
            self._signal(run, running, SIGNALS[signal])
            if grace <= 0:
                self._signal(run, running, signals.SIGKILL)

    def logs(self, key: str, rank: int) -> Path:
        """B4."""
        return self.root / key / f"rank-{rank}.log"

    def wait(self, key: str, timeout: float) -> RunStatus:
        """Blocks until the gang ended or `timeout` seconds passed (tests and tools)."""
        deadline = time.monotonic() + timeout
        while (found := self.status(key)).state is RunState.RUNNING:
            if time.monotonic() > deadline:
                return found
            time.sleep(POLL)
        return found

    # -- starting and adopting --------------------------------------------------------------

    def _start(self, launch: Launch) -> _Run:
        folder = self.root / launch.key
        folder.mkdir(parents=True, exist_ok=True)
        launch.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        started = time.time()
        write_atomically(
            folder / "launch.json", json.dumps({"ranks": len(launch.ranks), "started": started})
        )
        run = _Run(launch.key, folder, len(launch.ranks), started)
        envs = torchrun_env(launch, self.master_addr, free_port(self.master_addr))
        for index, rank_env in enumerate(envs):
            env = {**os.environ, **rank_env}
            command = [sys.executable, "-I", WRAPPER, str(folder), str(index), "--"]
            with open(self.logs(launch.key, index), "ab") as log:
                run.children[index] = subprocess.Popen(
                    [*command, *launch.command],
                    env=env,
                    cwd=launch.workdir or folder,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
        if self.on_exit is not None:
            for child in run.children.values():
                threading.Thread(
                    target=self._watch_exit, args=(launch.key, child), daemon=True
                ).start()
        return run

    def _watch_exit(self, key: str, child: subprocess.Popen[bytes]) -> None:
        """B7: tell the caller at once that a rank ended, so it need not poll for it."""
        with contextlib.suppress(Exception):
            os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # leaves it to poll()
            if self.on_exit is not None:
                self.on_exit(key)

    def _adopt(self, key: str) -> _Run | None:
        """B6: a run an earlier executor started on this folder, from its files."""
        folder = self.root / key
        try:
            launch = json.loads((folder / "launch.json").read_text())
        except (FileNotFoundError, ValueError):
            return None
        run = _Run(key, folder, int(launch["ranks"]), float(launch["started"]))
        _read_cancel(run)
        return run

    def _run(self, key: str) -> _Run:
        with self._lock:
            found = self._runs.get(key)
            if found is None:
                found = self._adopt(key)
                if found is not None:
                    self._runs[key] = found
        if found is None:
            raise KeyError(f"no run {key!r} on this executor")
        return found

    # -- ranks ------------------------------------------------------------------------------

    def _code(self, run: _Run, index: int) -> int | object | None:
        """A rank's exit code; None while it runs; LOST_RANK if it left no trace."""
        child = run.children.get(index)
        if child is not None:
            code = child.poll()  # reaps it
            if code is None:
                return None
            recorded = _read_exit(run.folder, index)
            return code if recorded is None else recorded[0]
        recorded = _read_exit(run.folder, index)
        if recorded is not None:
            return recorded[0]
        pid = self._pid(run, index)
        if pid is not None and _alive(pid, run.folder):
            return None
        # it ended between the two looks at its exit file (a wrapper that exited is no longer
        # found by its command line), or ended without recording: killed with its group
        # (SIGKILL); or it never started
        recorded = _read_exit(run.folder, index)
        if recorded is not None:
            return recorded[0]
        return LOST_RANK if pid is None else -signals.SIGKILL

    @staticmethod
    def _pid(run: _Run, index: int) -> int | None:
        child = run.children.get(index)
        if child is not None:
            return child.pid
        try:
            return int((run.folder / f"rank-{index}.pid").read_text())
        except (FileNotFoundError, ValueError):
            return _find_wrapper(run.folder, index)

    def _ended(self, run: _Run, index: int) -> float:
        recorded = _read_exit(run.folder, index)
        return recorded[1] if recorded is not None else time.time()

    def _signal(self, run: _Run, ranks: list[int], sig: signals.Signals) -> None:
        for index in ranks:
            pid = self._pid(run, index)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, sig)  # the rank and whatever it started


def _read_exit(folder: Path, index: int) -> tuple[int, float] | None:
    try:
        found = json.loads((folder / f"rank-{index}.exit").read_text())
        return int(found["code"]), float(found["ended"])
    except (FileNotFoundError, ValueError, KeyError):
        return None


def _read_cancel(run: _Run) -> None:
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
        run.kill_at = float(json.loads((run.folder / "cancel.json").read_text())["kill_at"])
        run.cancelled = True


def _find_wrapper(folder: Path, index: int) -> int | None:
    """B6: the wrapper of rank `index` of the run in `folder` that was started but died
    (with the service) before it wrote its pid file, found by its command line; None when
    no such process runs (the rank never started)."""
    wanted = f"{WRAPPER}\0{folder}\0{index}\0--\0".encode()
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if wanted in (proc / "cmdline").read_bytes():
                return int(proc.name)
    return None


def _alive(pid: int, folder: Path) -> bool:
    """Is the wrapper `pid` of a rank in `folder` still there (not a zombie, not a reused
    pid)?"""
    proc = Path("/proc") / str(pid)
    try:
        if proc.exists():
            stat = (proc / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                return False
            return str(folder) in (proc / "cmdline").read_bytes().decode(errors="replace")
        os.kill(pid, 0)
    except (ProcessLookupError, FileNotFoundError, IndexError):
        return False
    except PermissionError:
        return True
    return True


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on at `address` now (for MASTER_PORT, test servers)."""
    with socket.socket() as s:
        s.bind((address, 0))
        port: int = s.getsockname()[1]
        return port
