"""What a replay measured, and the limits beside it.

Definitions, cited by the CLI, the reports and docs/simulation.md:
- M1 JCT (job completion time) is end - submit, over finished jobs (completed or killed at
     walltime); a preempted and requeued job keeps its first submit time.
- M2 Wait (queueing delay) is the time a finished job spent pending: its JCT minus the time
     it held GPUs.
- M3 Utilisation is GPU-seconds held by jobs over GPU-seconds in service (nodes up or
     draining) from the first submit to the last end, overall and per GPU type; work later
     lost to a preemption counts as held (the GPUs were busy), and is reported on its own.
- M4 Makespan runs from the first submit to the last end.
- M5 Percentiles interpolate linearly between closest ranks (numpy's default).
- M6 Bounded slowdown is max(1, JCT / max(runtime, 10 s)), runtime being the job's trace
     duration (capped by its walltime): how many times longer than alone on the cluster.
- M7 Limits: the mean JCT if every job started on arrival (its runtime), and the makespan no
     schedule can beat: max(GPU-hours asked / mean GPUs in service, the latest arrival plus
     its runtime).
- M8 A project is entitled to a share of the GPU-hours the cluster delivered, by water-
     filling over shares: each gets delivered x its shares' fraction, capped at what its own
     jobs asked for, the rest going to the others. Received over entitled, per project, and
     Jain's index of those ratios ((sum x)^2 / (n sum x^2), 1 = perfectly fair) show fairness.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from kizuna.kernel.units import HOUR, Instant, Seconds
from kizuna.scheduling.model import Allocation, Job
from kizuna.simulation.timeline import Timeline

SLOWDOWN_FLOOR = 10.0
"""Seconds: runtimes shorter than this count as this long in bounded slowdown (M6)."""


class Outcome(StrEnum):
    """How a run on GPUs ended."""

    COMPLETED = "completed"
    TIMEOUT = "timeout"
    """Killed at its walltime before its work was done (Slurm's TIMEOUT); not requeued."""
    PREEMPTED = "preempted"
    """Stopped after a preemption's grace period (or its node removed); requeued with its
    checkpointed work."""


@dataclass(frozen=True, slots=True)
class Run:
    """One stretch of a job on GPUs, from admission to its end."""

    start: Instant
    end: Instant
    allocation: Allocation
    outcome: Outcome
    lost: Seconds = Seconds(0.0)
    """Runtime that did no lasting work: since the last checkpoint, thrown away by a
    preemption; or, in a run after one, the restart overhead of reloading a checkpoint."""

    @property
    def held(self) -> float:
        """GPU-seconds this run held."""
        return self.allocation.gpus * (self.end - self.start)


@dataclass(frozen=True, slots=True)
class JobHistory:
    """A job of the trace, how long it really runs, and every run it got."""

    job: Job
    runs: tuple[Run, ...]
    duration: float = 0.0
    """Its trace runtime: what it would take alone on the cluster."""

    @property
    def finished(self) -> bool:
        return bool(self.runs) and self.runs[-1].outcome is not Outcome.PREEMPTED

    @property
    def end(self) -> Instant | None:
        return self.runs[-1].end if self.finished else None

    @property
    def runtime(self) -> float:
        """Its runtime alone on the cluster: the trace duration, cut at its walltime."""
        return min(self.duration, self.job.walltime)


@dataclass(frozen=True, slots=True)
class Spread:
    """Mean and percentiles of one quantity over finished jobs, in its unit (M5)."""

    mean: float = 0.0
    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        ordered = sorted(values)
        if not ordered:
            return cls()
        return cls(
            math.fsum(ordered) / len(ordered),
            percentile(ordered, 0.50),
            percentile(ordered, 0.95),
            percentile(ordered, 0.99),
        )


@dataclass(frozen=True, slots=True)
class ProjectShare:
    """One project's GPU-hours: asked for, received, entitled to (M8)."""

    project: str
    jobs: int
    demand: float
    received: float
    entitled: float

    @property
    def ratio(self) -> float:
        """Received over entitled; 1 when entitled to nothing and given nothing."""
        if self.entitled <= 0:
            return 1.0 if self.received <= 0 else math.inf
        return self.received / self.entitled


@dataclass(frozen=True, slots=True)
class Metrics:
    """The summary a policy comparison reads; times in seconds, 0 when no job finished."""

    jobs: int
    finished: int
    timed_out: int
    never_started: int
    """Jobs that never got GPUs (larger than the cluster, or still waiting at the end)."""
    jct: Spread
    wait: Spread
    slowdown: Spread
    makespan: float
    utilisation: float
    utilisation_by_type: dict[str, float]
    gpu_hours: float
    """GPU-hours held by jobs, lost work included (M3)."""
    preemptions: int
    lost_gpu_seconds: float
    jct_mean_bound: float
    makespan_bound: float
    projects: tuple[ProjectShare, ...]
    jain: float
    """Jain's index of received / entitled over projects entitled to something (M8)."""

    @property
    def jct_mean(self) -> float:
        return self.jct.mean

    @property
    def jct_p50(self) -> float:
        return self.jct.p50

    @property
    def jct_p95(self) -> float:
        return self.jct.p95

    @property
    def wait_mean(self) -> float:
        return self.wait.mean


def summarize(
    histories: Sequence[JobHistory],
    timeline: Timeline,
    shares: Mapping[str, float],
) -> Metrics:
    """The metrics M1-M8 of a replay; `shares` maps each project to its fair-share weight."""
    done = [h for h in histories if h.finished]
    jct = [_jct(h) for h in done]
    waits = [_jct(h) - math.fsum(r.end - r.start for r in h.runs) for h in done]
    slowdowns = [max(1.0, _jct(h) / max(h.runtime, SLOWDOWN_FLOOR)) for h in done]
    runs = [r for h in histories for r in h.runs]
    start = min((h.job.submit_time for h in histories), default=0.0)
    end = max((r.end for r in runs), default=start)
    makespan = end - start if runs else 0.0
    held = [math.fsum(r.held for r in h.runs) for h in histories]  # GPU-seconds, per job
    held_by_type: dict[str, float] = {}
    for h, gpu_seconds in zip(histories, held, strict=True):
        t = h.job.gpu_type
        held_by_type[t] = held_by_type.get(t, 0.0) + gpu_seconds
    service = {t: timeline.integral(timeline.capacity[t], start, end) for t in timeline.types}
    total_service = math.fsum(service.values())
    asked = math.fsum(h.job.gpus * h.runtime for h in histories)
    mean_gpus = total_service / makespan if makespan > 0 else 0.0
    latest = max((h.job.submit_time + h.runtime for h in histories), default=start)
    projects = _shares(histories, held, shares)
    return Metrics(
        jobs=len(histories),
        finished=len(done),
        timed_out=sum(1 for h in done if h.runs[-1].outcome is Outcome.TIMEOUT),
        never_started=sum(1 for h in histories if not h.runs),
        jct=Spread.of(jct),
        wait=Spread.of(waits),
        slowdown=Spread.of(slowdowns),
        makespan=makespan,
        utilisation=math.fsum(held_by_type.values()) / total_service if total_service else 0.0,
        utilisation_by_type={
            t: held_by_type.get(t, 0.0) / service[t] if service[t] else 0.0 for t in service
        },
        gpu_hours=math.fsum(held_by_type.values()) / HOUR,
        preemptions=sum(1 for r in runs if r.outcome is Outcome.PREEMPTED),
        lost_gpu_seconds=math.fsum(r.allocation.gpus * r.lost for r in runs),
        jct_mean_bound=math.fsum(h.runtime for h in done) / len(done) if done else 0.0,
        makespan_bound=max(asked / mean_gpus if mean_gpus else 0.0, latest - start),
        projects=projects,
        jain=jain([p.ratio for p in projects if p.entitled > 0]),
    )


def percentile(ordered: Sequence[float], q: float) -> float:
    """The `q`-quantile (0 <= q <= 1) of sorted values, interpolated (M5); 0 when empty."""
    if not ordered:
        return 0.0
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def jain(values: Sequence[float]) -> float:
    """Jain's fairness index of non-negative values: 1 when all are equal, 1/n at worst;
    1 for no values."""
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) != len(values):
        return 0.0
    squares = math.fsum(v * v for v in finite)
    if not finite or squares == 0:
        return 1.0
    return math.fsum(finite) ** 2 / (len(finite) * squares)


def entitlements(
    delivered: float, demand: Mapping[str, float], shares: Mapping[str, float]
) -> dict[str, float]:
    """Water-filling of `delivered` GPU-hours over projects by shares, capped by demand (M8)."""
    out = dict.fromkeys(demand, 0.0)
    open_ = {p for p, d in demand.items() if d > 0 and shares.get(p, 0.0) > 0}
    left = delivered
    while open_ and left > 1e-12:
        weight = math.fsum(shares[p] for p in open_)
        capped = {p for p in open_ if demand[p] - out[p] <= left * shares[p] / weight}
        if not capped:
            for p in open_:
                out[p] += left * shares[p] / weight
            break
        for p in sorted(capped):
            left -= demand[p] - out[p]
            out[p] = demand[p]
        open_ -= capped
    return out


def _shares(
    histories: Sequence[JobHistory], held: Sequence[float], shares: Mapping[str, float]
) -> tuple[ProjectShare, ...]:
    jobs: dict[str, int] = dict.fromkeys(shares, 0)
    demand: dict[str, float] = dict.fromkeys(shares, 0.0)
    received: dict[str, float] = dict.fromkeys(shares, 0.0)
    for h, gpu_seconds in zip(histories, held, strict=True):
        p = h.job.project
        jobs[p] = jobs.get(p, 0) + 1
        demand[p] = demand.get(p, 0.0) + h.job.gpus * h.runtime / HOUR
        received[p] = received.get(p, 0.0) + gpu_seconds / HOUR
    entitled = entitlements(math.fsum(received.values()), demand, shares)
    return tuple(
        ProjectShare(p, jobs[p], demand[p], received[p], entitled.get(p, 0.0))
        for p in sorted(demand)
    )


def _jct(history: JobHistory) -> float:
    return history.runs[-1].end - history.job.submit_time  # M1
