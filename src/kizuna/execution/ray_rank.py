"""The ranks of one gang on one Ray node: the actor that runs them there (ADR 0025).

The Ray backend (ray_backend.py) makes one of these per node of a gang, as a detached named
actor in that node's bundle of the gang's placement group. It starts each of the node's ranks
as a process group of its own with the environment it is given (as the local executor does),
writes each rank's stdout and stderr to a file on its node, and answers: has a rank ended and
how, send ranks a signal, the next bytes of a rank's log. Every method returns at once.

One actor per node, not per rank: Ray starts a worker process for each actor, which costs
more than the ranks themselves (docs/benchmarks.md).

Standard library only (and Ray, imported where it is used): the backend ships this module to
the nodes by value, so a Ray cluster runs Kizuna's jobs without Kizuna installed on it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

READ_LIMIT = 1 << 20


class _Rank:
    def __init__(self, log: Path) -> None:
        self.log = log
        self.child: subprocess.Popen[bytes] | None = None
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.code: int | None = None

    def start(self, command: list[str], env: dict[str, str], cwd: str) -> None:
        self.started_at = time.time()
        with open(self.log, "wb") as log:  # a key starts once (B1): older bytes are stale
            try:
                self.child = subprocess.Popen(
                    command,
                    env=env,
                    cwd=cwd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as error:
                log.write(f"kizuna: cannot start {command[0]!r}: {error.strerror}\n".encode())
                self.ended_at = time.time()
                self.code = 127 if isinstance(error, FileNotFoundError) else 126

    def poll(self) -> tuple[bool, int | None, float | None]:
        if self.child is not None and self.code is None:
            found = self.child.poll()
            if found is not None:
                self.code, self.ended_at = found, time.time()
        return self.started_at is not None, self.code, self.ended_at

    def signal(self, signum: int) -> None:
        if self.child is not None and self.child.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.child.pid, signum)


class NodeRanks:
    def __init__(self, key: str, ranks: list[int]) -> None:
        self.folder = Path(tempfile.gettempdir()) / "kizuna-ranks" / key
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ranks = {index: _Rank(self.folder / f"rank-{index}.log") for index in ranks}
        self.started_at: float | None = None

    def node_ip(self) -> str:
        """This node's address, as Ray knows it (rank 0's is the gang's MASTER_ADDR)."""
        import ray  # noqa: PLC0415 - only ever called inside a Ray worker

        return str(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]

    def free_port(self) -> int:
        """A TCP port nobody listens on at this node's address now (MASTER_PORT)."""
        with socket.socket() as s:
            s.bind((self.node_ip(), 0))
            return int(s.getsockname()[1])

    def start(
        self, command: list[str], envs: dict[int, dict[str, str]], workdir: str | None
    ) -> float:
        """Starts each rank once (a second call returns the first start's instant)."""
        if self.started_at is not None:
            return self.started_at
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        self.started_at = time.time()
        for index, rank in self.ranks.items():
            rank.start(command, {**inherited, **envs[index]}, workdir or str(self.folder))
        return self.started_at

    def poll(self) -> dict[int, tuple[bool, int | None, float | None]]:
        """Per rank: (started, exit code or None while it runs, the instant it ended)."""
        return {index: rank.poll() for index, rank in self.ranks.items()}

    def signal(self, signum: int, ranks: list[int]) -> None:
        """Signals these ranks' whole process groups (each rank and what it started)."""
        for index in ranks:
            if index in self.ranks:
                self.ranks[index].signal(signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL, list(self.ranks))

    def read(self, rank: int, offset: int) -> bytes:
        """Up to 1 MiB of a rank's log from `offset`."""
        try:
            with open(self.ranks[rank].log, "rb") as f:
                f.seek(offset)
                return f.read(READ_LIMIT)
        except (FileNotFoundError, KeyError):
            return b""
