"""The loop's thread: one leader per store, ticks on every change and on a short timer
(ADR 0022).

R1. Only the process holding the store's loop lock runs the loop: on SQLite an exclusive
    `flock` on `$KIZUNA_HOME/loop.lock`, on PostgreSQL a session advisory lock. A process
    that dies releases it with its descriptors; another one takes over within `retry`
    seconds. So any number of API processes may serve one store.
R2. A tick runs when woken (a change written through the API) or `every` seconds; a tick
    that fails is logged and retried at the next one (nothing it half did was committed).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from kizuna.live.loop import Loop

log = logging.getLogger("kizuna.loop")
LOOP_LOCK = 6_964


class Leadership(Protocol):
    def acquire(self) -> bool: ...

    def release(self) -> None: ...


class FileLeadership:
    """R1 on SQLite."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class AdvisoryLeadership:
    """R1 on PostgreSQL: the lock lives as long as this connection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._connection: Connection | None = None

    def acquire(self) -> bool:
        if self._connection is not None:
            return True
        connection = self.engine.connect()
        got = connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOOP_LOCK})
        connection.commit()
        if got.scalar():
            self._connection = connection
            return True
        connection.close()
        return False

    def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOOP_LOCK})
                self._connection.commit()
            self._connection.close()
            self._connection = None


def leadership_for(engine: Engine, home: Path) -> Leadership:
    if engine.dialect.name == "postgresql":
        return AdvisoryLeadership(engine)
    return FileLeadership(home / "loop.lock")


class Runner:
    """R2: runs `loop.tick` in a thread while this process leads."""

    def __init__(
        self, loop: Loop, leadership: Leadership, every: float = 0.25, retry: float = 2.0
    ) -> None:
        self.loop, self.leadership, self.every, self.retry = loop, leadership, every, retry
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kizuna-loop", daemon=True)
        self.leading = False

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self.loop.want_cycle()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self.leadership.release()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.leading:
                self.leading = self.leadership.acquire()
                if not self.leading:
                    self._stop.wait(self.retry)
                    continue
                log.info("this process runs the scheduling loop")
            try:
                self.loop.tick()
            except Exception:  # R2: retried at the next tick
                log.exception("scheduling loop tick failed")
            self._wake.wait(self.every)
            self._wake.clear()
