"""32 concurrent submissions race for the last GPU-hours of one award (issue 5): exactly the
ones that fit are admitted, the rest wait with reason `budget`, and the award's available
balance never goes below zero (ledger L1-L3), on SQLite and on PostgreSQL."""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import func, select

from kizuna.api.testing import Service
from kizuna.services.ledger import balances_of
from kizuna.store.engine import reading
from kizuna.store.tables import Award, Job, Run, UsageRecord

K = 5
WALLTIME = 720
"""K jobs of 1 GPU x 720 s hold exactly the award's one GPU-hour."""
RACERS = 32
SLEEP = 6.0


@dataclass(frozen=True)
class Sample:
    available_ms: int
    open_runs: int
    waiting: tuple[str | None, ...]
    """The reason codes of the pending jobs."""


class Sampler:
    """The award's balance, its open runs and the waiting jobs' reasons, from the store
    every 20 ms."""

    def __init__(self, live: Service, award: str) -> None:
        self.sessions = live.client.app.state.kizuna.sessions  # type: ignore[attr-defined]
        self.award = award
        self.samples: list[Sample] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.02):
            with reading(self.sessions) as session:
                award = session.get(Award, self.award)
                assert award is not None
                balance = balances_of(session, [award])[award.id]
                open_runs = session.scalar(
                    select(func.count()).select_from(Run).where(Run.ended_at.is_(None))
                )
                waiting = session.scalars(select(Job.reason_code).where(Job.state == "pending"))
                self.samples.append(Sample(balance.available_ms, int(open_runs or 0), (*waiting,)))

    def first_wave(self, timeout: float = 60) -> Sample:
        """The first sample where K runs hold the award and every other racer waits for
        `budget`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for sample in list(self.samples):
                if sample.open_runs == K and sample.waiting == ("budget",) * (RACERS - K):
                    return sample
            time.sleep(0.05)
        raise AssertionError(self.samples[-5:])

    def done(self) -> list[Sample]:
        self.stop.set()
        self.thread.join()
        return self.samples


def test_exactly_the_submissions_the_award_covers_are_admitted(live: Service) -> None:
    live.node("n0", "cpu", 64)
    live.org("acme")
    live.project("acme", "llm")
    award = live.award("acme/llm", "cpu", hours=1, nominal=64)["id"]
    sampler = Sampler(live, award)
    command = [sys.executable, "-c", f"import time; time.sleep({SLEEP})"]
    barrier = threading.Barrier(RACERS)

    def submit(number: int) -> int:
        barrier.wait()
        body = {"command": command, "gpu_type": "cpu", "walltime": WALLTIME, "name": f"r{number}"}
        return int(live.job("acme/llm", 1, **body)["id"])

    with ThreadPoolExecutor(RACERS) as pool:
        ids = list(pool.map(submit, range(RACERS)))

    sampler.first_wave()
    for job in ids:  # the race is decided: the waiting ones go (the others are cancelled later)
        if live.ok("GET", f"/jobs/{job}")["state"] == "pending":
            live.ok("POST", f"/jobs/{job}/cancel")
    deadline = time.monotonic() + 60
    while any(live.ok("GET", f"/jobs/{i}")["state"] not in ("succeeded", "cancelled") for i in ids):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    samples = sampler.done()

    assert min(s.available_ms for s in samples) >= 0
    assert max(s.open_runs for s in samples) == K
    sessions = live.client.app.state.kizuna.sessions  # type: ignore[attr-defined]
    with reading(sessions) as session:
        records = list(session.scalars(select(UsageRecord).where(UsageRecord.award_id == award)))
        runs = list(session.scalars(select(Run)))
        granted = session.get(Award, award).gpu_seconds * 1000  # type: ignore[union-attr]
    assert len(runs) == len(records) >= K  # more if a racer got in before it was cancelled
    assert all(0 < r.gpu_ms <= WALLTIME * 1000 for r in records)
    assert granted - sum(r.gpu_ms for r in records) >= 0
