"""The replay's pending jobs, shown to each cycle without copying them all (ADR 0014, E3).

A snapshot's `pending` must not change once the scheduler has it: a `Scheduler` keeps it
for the next cycle, and a caller's `on_cycle` hook may keep it longer. Copying every pending
job into a tuple on each cycle kept that promise at a price: with a backlog of thousands of
jobs (the Philly replay has 2,700 on average, 8,000 at most) the copy was 6 % of a whole
replay. Instead, `PendingJobs` keeps a base tuple and what changed since it was made: each
cycle gets an immutable `PendingView` of the base, the ids removed from it and the jobs added
after it, which costs the changes, not the backlog; the base is made anew once the changes
pile up (`REBASE_AFTER`), so a view never holds many.

P1. A view lists the pending jobs in the order they became pending (the order of a dict
    keyed by job id that a job leaves when it starts and joins at the end when requeued),
    exactly as the tuple it replaces did.
P2. A view never changes after it is made, whatever the replay does next.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

from kizuna.kernel.ids import JobId
from kizuna.scheduling.model import Job

REBASE_AFTER = 48
"""Changes (jobs added or removed) a view may carry before the base is made anew: each cycle
copies at most this many, and a new base (the whole backlog) comes once per this many."""


class PendingView(Sequence[Job]):
    """The pending jobs at one cycle (P1, P2): `base` less `removed`, then `added`."""

    __slots__ = ("_added", "_base", "_jobs", "_length", "_removed")

    def __init__(
        self, base: tuple[Job, ...], removed: frozenset[JobId], added: tuple[Job, ...]
    ) -> None:
        self._base, self._removed, self._added = base, removed, added
        self._length = len(base) - len(removed) + len(added)
        self._jobs: tuple[Job, ...] | None = None

    def _all(self) -> tuple[Job, ...]:
        jobs = self._jobs
        if jobs is None:
            removed = self._removed
            kept = (
                self._base if not removed else tuple(j for j in self._base if j.id not in removed)
            )
            jobs = self._jobs = kept + self._added
        return jobs

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[Job]:
        return iter(self._all())

    @overload
    def __getitem__(self, index: int) -> Job: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Job, ...]: ...

    def __getitem__(self, index: int | slice) -> Job | tuple[Job, ...]:
        return self._all()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PendingView):
            return self._all() == other._all()
        return isinstance(other, tuple) and self._all() == other

    def __hash__(self) -> int:
        return hash(self._all())

    def __repr__(self) -> str:
        return f"PendingView({list(self._all())!r})"


class PendingJobs:
    """The replay's pending jobs: changed job by job, shown to a cycle as a `PendingView`."""

    def __init__(self, rebase_after: int = REBASE_AFTER) -> None:
        self.rebase_after = rebase_after
        self.jobs: dict[JobId, Job] = {}
        """Every pending job by id, in the order they became pending (P1)."""
        self._base: tuple[Job, ...] = ()
        self._removed: set[JobId] = set()
        """Ids of base jobs no longer pending."""
        self._added: dict[JobId, Job] = {}
        """Jobs pending since the base was made, not in it."""

    def __len__(self) -> int:
        return len(self.jobs)

    def add(self, job: Job) -> None:
        """`job` becomes pending; its id must not be pending."""
        self.jobs[job.id] = job
        self._added[job.id] = job

    def pop(self, job_id: JobId) -> Job:
        """The pending job `job_id` leaves (KeyError when it is not pending)."""
        job = self.jobs.pop(job_id)
        if self._added.pop(job_id, None) is None:
            self._removed.add(job_id)
        return job

    def view(self) -> PendingView:
        """The pending jobs as of now, never to change (P2)."""
        if len(self._removed) + len(self._added) > self.rebase_after:
            self._base = tuple(self.jobs.values())
            self._removed.clear()
            self._added.clear()
        return PendingView(self._base, frozenset(self._removed), tuple(self._added.values()))
