"""EASY backfill: the shadow time of the highest blocked job, and the slack it leaves (ADR 0006).

The highest blocked job of each GPU type is promised the earliest start that running jobs'
walltimes allow (the "shadow time", as in Slurm and the EASY scheduler of Lifka, 1995) and a
placement at that time. A later job may start now only if it ends before the shadow time, or
if on every node it takes no more than the slack: GPUs free at the shadow time that the
promised placement leaves unused. So backfill can never delay the promised start.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, islice
from operator import itemgetter

from kizuna.kernel.ids import CohortId, ProjectId
from kizuna.kernel.units import UNLIMITED, Instant
from kizuna.scheduling.capacity import Pool
from kizuna.scheduling.model import Job
from kizuna.scheduling.placement import Parts, place
from kizuna.scheduling.quota import QuotaBook

Release = tuple[Instant, int, int, str]
"""(instant, node index, GPUs, job id): GPUs a job returns by that instant at the latest."""


@dataclass(frozen=True)
class Shadow:
    """The promise to a blocked job: its start, its placement then, and the slack left."""

    job: Job
    start: Instant
    parts: Parts
    slack: list[int]


@dataclass
class Promise:
    """What the shadow job needs besides GPUs (rule B2): that it still passes its quota in
    every later cycle until its start, that its quota (and its cohort's lendable quota when
    it borrows) has room for it at its start, and that its award budget covers it. Jobs
    that start after the promise was made may not take that room (ADR 0006)."""

    project: ProjectId | None
    cohort: CohortId | None
    """Set when the shadow job borrows: then borrowing jobs of the cohort share its room."""
    project_now: float
    """GPUs that jobs of the project starting now may take without making it fail quota."""
    cohort_now: float
    """The same for borrowing jobs of the cohort."""
    project_then: float
    """GPUs that jobs of the project still running at the promised start may take."""
    cohort_then: float
    """The same for borrowing jobs of the cohort."""
    budget: float
    """GPU-seconds that any new job of the project may still commit."""
    quota: QuotaBook | None

    @classmethod
    def none(cls) -> Promise:
        return cls(None, None, UNLIMITED, UNLIMITED, UNLIMITED, UNLIMITED, UNLIMITED, None)

    def refusal(self, job: Job, late: bool, borrows: bool) -> str | None:
        """What starting `job` now would take from the promise, or None if nothing."""
        mine, ours = job.project == self.project, borrows and self._in_cohort(job)
        if mine and job.gpus * job.walltime > self.budget:
            return f"the award budget of project {self.project}"
        if mine and job.gpus > min(self.project_now, self.project_then if late else UNLIMITED):
            return f"the quota of project {self.project}"
        if ours and job.gpus > min(self.cohort_now, self.cohort_then if late else UNLIMITED):
            return f"the quota cohort {self.cohort} can lend"
        return None

    def book(self, job: Job, late: bool, borrows: bool) -> None:
        if job.project == self.project:
            self.budget -= job.gpus * job.walltime
            self.project_now -= job.gpus
            if late:
                self.project_then -= job.gpus
        if borrows and self._in_cohort(job):
            self.cohort_now -= job.gpus
            if late:
                self.cohort_then -= job.gpus

    def _in_cohort(self, job: Job) -> bool:
        return (
            self.cohort is not None
            and self.quota is not None
            and (self.quota.cohort(job.project) == self.cohort)
        )


def find_shadow(
    pool: Pool,
    releases: Sequence[Release],
    job: Job,
    now: Instant,
    exclude_at: Callable[[Instant], frozenset[int]],
    opens: Sequence[Instant] = (),
) -> Shadow | None:
    """The earliest instant from which `job` fits if running jobs end at their bounds, or None.

    `releases` must be sorted by instant. Free GPUs only grow with time, so the first prefix
    of releases that fits is found by binary search; reservations that close nodes at some
    instants are then honoured by stepping forward from there.
    """
    if job.one_domain:
        cuts = [0, *_cut_points(releases)]
        if not _fits(pool, releases, cuts[-1], job):
            return None
        lo, hi = 0, len(cuts) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if _fits(pool, releases, cuts[mid], job):
                hi = mid
            else:
                lo = mid + 1
        tried: Iterable[int] = cuts[lo:]
    else:
        first = _first_fit(pool, releases, job)
        if first is None:
            return None
        tried = _cuts_from(releases, first)
    for start, count in _instants(releases, tried, opens, now):
        usable = _usable_at(pool, releases, count)
        excluded = exclude_at(start)
        masked = [0 if i in excluded else u for i, u in enumerate(usable)] if excluded else usable
        dom = pool.topo.domain_sums(masked)
        parts = place(pool.topo, masked, dom, job.gpus, job.gpus_per_node, job.one_domain)
        if parts is not None:
            slack = list(usable)
            for i, n in parts:
                slack[i] -= n
            return Shadow(job, start, parts, slack)
    return None


def _instants(
    releases: Sequence[Release], cuts: Iterable[int], opens: Sequence[Instant], now: Instant
) -> Iterable[tuple[Instant, int]]:
    """Candidate starts in time order: each release instant from the first cut on, and each
    instant a reservation closes (`opens`), paired with the releases done by then. Without
    reservations the cuts are already in that order, and are worked out as they are tried
    (the first one usually places the gang)."""
    if not opens:
        return ((Instant(max(now, releases[c - 1][0])) if c else now, c) for c in cuts)
    out = [(Instant(max(now, releases[c - 1][0])) if c else now, c) for c in cuts]
    first = out[0][0]
    for at in opens:
        if at > first:
            out.append((at, _done_by(releases, at)))
    return sorted(out)


def _cut_points(releases: Sequence[Release]) -> list[int]:
    """Prefix lengths at which the release instant changes (all releases of an instant together)."""
    last = len(releases)
    return [k for k in range(1, last + 1) if k == last or releases[k][0] != releases[k - 1][0]]


def free_at(pool: Pool, releases: Sequence[Release], at: Instant) -> list[int]:
    """GPUs per node free at `at` if running jobs end at their bounds (`releases` sorted)."""
    return _usable_at(pool, releases, _done_by(releases, at))


def _done_by(releases: Sequence[Release], at: float) -> int:
    """How many releases (sorted) are done by `at`: a cut, as they go by instant."""
    return bisect_right(releases, (at, 1 << 62, 0, ""))


def _usable_at(pool: Pool, releases: Sequence[Release], count: int) -> list[int]:
    usable, schedulable = list(pool.now.usable), pool.schedulable
    for _, i, n, _ in islice(releases, count):
        if schedulable[i]:
            usable[i] += n
    return usable


def _first_fit(pool: Pool, releases: Sequence[Release], job: Job) -> int | None:
    """The first cut (how many releases are done) after which a gang that may span domains
    fits, in one pass over the releases: it fits exactly when enough GPUs (or nodes with G
    free, for N x G gangs) are usable (ADR 0007), counted as each release frees GPUs. The
    releases of one instant come together, so a cut never splits them."""
    usable, schedulable = pool.now.usable, pool.schedulable
    per_node = job.gpus_per_node
    if not per_node:
        return _first_count(releases, schedulable, job.gpus - pool.now.free)
    need, have = job.gpus // per_node, sum(1 for u in usable if u >= per_node)
    if have >= need:
        return 0
    # GPUs each node lacks for `per_node` (never reached on a node that takes no work)
    short = [per_node - u if ok else 1 << 60 for u, ok in zip(usable, schedulable, strict=True)]
    for at, i, n, _ in releases:
        lacks = short[i]
        if lacks > 0:
            short[i] = lacks = lacks - n
            if lacks <= 0:
                have += 1
                if have >= need:
                    return _done_by(releases, at)  # with the rest of that instant's
    return None


def _first_count(
    releases: Sequence[Release], schedulable: Sequence[bool], short: int
) -> int | None:
    """`_first_fit` for a gang that needs `short` GPUs more than are free now, in any
    split: the first cut at which the GPUs released so far reach it (running sums)."""
    if short <= 0:
        return 0
    if all(schedulable):
        freed = list(accumulate(map(itemgetter(2), releases)))
    else:
        freed = list(accumulate(n if schedulable[i] else 0 for _, i, n, _ in releases))
    reached = bisect_left(freed, short)
    if reached == len(freed):
        return None
    return _done_by(releases, releases[reached][0])  # with the rest of that instant's


def _cuts_from(releases: Sequence[Release], first: int) -> Iterator[int]:
    """The cuts from `first` on, worked out as they are asked for (the first one usually
    places the gang): `first`, then each count of releases at which the instant changes."""
    yield first
    done = first
    while done < len(releases):
        done = _done_by(releases, releases[done][0])
        yield done


def _fits(pool: Pool, releases: Sequence[Release], count: int, job: Job) -> bool:
    """Does a one-domain gang fit once the first `count` releases are done? Placed to find
    out (gangs that may span domains are counted by `_first_fit`)."""
    usable = _usable_at(pool, releases, count)
    dom = pool.topo.domain_sums(usable)
    if sum(dom) < job.gpus:
        return False
    return place(pool.topo, usable, dom, job.gpus, job.gpus_per_node, job.one_domain) is not None
