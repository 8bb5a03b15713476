"""Reading a run's logs for the API, in pieces a client can follow (no store, no service).

G1. A rank's log is the file the backend names (`Backend.logs`, B4); a service without a loop
    reads the local executor's layout under `runs_dir` (`<key>/rank-<n>.log`).
G2. A piece is at most `MAX_PIECE` bytes from `offset`; its end is the next offset. A file not
    written yet reads as empty, so a client polls until the run has ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kizuna.api.deps import Wiring

MAX_PIECE = 1 << 20
"""1 MiB per response."""


@dataclass(frozen=True)
class Piece:
    data: bytes
    next_offset: int


def log_path(wired: Wiring, key: str, rank: int) -> Path:
    """G1."""
    if wired.runner is not None:
        return wired.runner.loop.backend.logs(key, rank)
    return wired.settings.runs_dir / key / f"rank-{rank}.log"


def read_piece(path: Path, offset: int, limit: int = MAX_PIECE) -> Piece:
    """G2."""
    try:
        with path.open("rb") as file:
            file.seek(offset)
            data = file.read(limit)
    except FileNotFoundError:
        return Piece(b"", offset)
    return Piece(data, offset + len(data))
