"""What a replay measured: job completion times, waiting, utilisation and preemption cost.

Definitions, cited by the CLI and reports:
- M1 JCT (job completion time) is end - submit, over finished jobs (completed or killed at
     walltime); a preempted and requeued job keeps its first submit time.
- M2 Wait is the time a finished job spent pending: its JCT minus the time it held GPUs.
- M3 Utilisation is GPU-seconds held by jobs over capacity x makespan; work later lost to a
     preemption counts as held (the GPUs were busy), and is also reported on its own.
- M4 Makespan runs from the first submit to the last end.
- M5 Percentiles interpolate linearly between closest ranks (numpy's default).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from kizuna.kernel.units import Instant, Seconds
from kizuna.scheduling.model import Allocation, Job


class Outcome(StrEnum):
    """How a run on GPUs ended."""

    COMPLETED = "completed"
    TIMEOUT = "timeout"
    """Killed at its walltime before its work was done (Slurm's TIMEOUT); not requeued."""
    PREEMPTED = "preempted"
    """Stopped after a preemption's grace period; requeued with its checkpointed work."""


@dataclass(frozen=True, slots=True)
class Run:
    """One stretch of a job on GPUs, from admission to its end."""

    start: Instant
    end: Instant
    allocation: Allocation
    outcome: Outcome
    lost: Seconds = Seconds(0.0)
    """Runtime since the last checkpoint, thrown away by a preemption."""

    @property
    def held(self) -> float:
        """GPU-seconds this run held."""
        return self.allocation.gpus * (self.end - self.start)


@dataclass(frozen=True, slots=True)
class JobHistory:
    """A job of the trace and every run it got."""

    job: Job
    runs: tuple[Run, ...]

    @property
    def finished(self) -> bool:
        return bool(self.runs) and self.runs[-1].outcome is not Outcome.PREEMPTED

    @property
    def end(self) -> Instant | None:
        return self.runs[-1].end if self.finished else None


@dataclass(frozen=True, slots=True)
class Metrics:
    """The summary a policy comparison reads; times in seconds, 0 when no job finished."""

    jobs: int
    finished: int
    timed_out: int
    jct_mean: float
    jct_p50: float
    jct_p95: float
    wait_mean: float
    utilisation: float
    preemptions: int
    lost_gpu_seconds: float
    makespan: float


def summarize(histories: Sequence[JobHistory], capacity: int) -> Metrics:
    """The metrics M1-M5 of a replay on a cluster of `capacity` GPUs."""
    done = [h for h in histories if h.finished]
    jct = sorted(_jct(h) for h in done)
    waits = [_jct(h) - sum(r.end - r.start for r in h.runs) for h in done]
    runs = [r for h in histories for r in h.runs]
    makespan = _makespan(histories)
    held = sum(r.held for r in runs)
    return Metrics(
        jobs=len(histories),
        finished=len(done),
        timed_out=sum(1 for h in done if h.runs[-1].outcome is Outcome.TIMEOUT),
        jct_mean=_mean(jct),
        jct_p50=percentile(jct, 0.50),
        jct_p95=percentile(jct, 0.95),
        wait_mean=_mean(waits),
        utilisation=held / (capacity * makespan) if capacity and makespan else 0.0,
        preemptions=sum(1 for r in runs if r.outcome is Outcome.PREEMPTED),
        lost_gpu_seconds=sum(r.allocation.gpus * r.lost for r in runs),
        makespan=makespan,
    )


def percentile(ordered: Sequence[float], q: float) -> float:
    """The `q`-quantile (0 <= q <= 1) of sorted values, interpolated (M5); 0 when empty."""
    if not ordered:
        return 0.0
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _jct(history: JobHistory) -> float:
    return history.runs[-1].end - history.job.submit_time  # M1


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _makespan(histories: Sequence[JobHistory]) -> float:
    ends = [r.end for h in histories for r in h.runs]
    if not ends:
        return 0.0
    return max(ends) - min(h.job.submit_time for h in histories)  # M4
